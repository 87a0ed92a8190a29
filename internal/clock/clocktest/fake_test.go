package clocktest

import (
	"testing"
	"time"
)

func TestFakeTimersAndTickers(t *testing.T) {
	start := time.Unix(1700000000, 0)
	c := New(start)
	var order []string
	c.AfterFunc(2*time.Second, func() { order = append(order, "b") })
	c.AfterFunc(time.Second, func() { order = append(order, "a") })
	stopped := c.AfterFunc(time.Second, func() { order = append(order, "never") })
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop reports wrongly")
	}
	tk := c.NewTicker(500 * time.Millisecond)
	c.Advance(1500 * time.Millisecond)
	if len(order) != 1 || order[0] != "a" {
		t.Fatalf("after 1.5 s: %v", order)
	}
	select {
	case at := <-tk.C():
		if at != start.Add(500*time.Millisecond) {
			t.Errorf("first tick at %v (a slow reader keeps the first, later ones are dropped)", at.Sub(start))
		}
	default:
		t.Fatal("no tick")
	}
	if n := c.Pending(); n != 2 {
		t.Errorf("pending = %d, want the 2 s timer and the ticker", n)
	}
	c.Advance(time.Second)
	if len(order) != 2 || order[1] != "b" {
		t.Fatalf("after 2.5 s: %v", order)
	}
	tk.Stop()
	c.Advance(time.Hour)
	if c.Pending() != 0 || !c.Now().Equal(start.Add(time.Hour+2500*time.Millisecond)) {
		t.Errorf("pending %d, now %v", c.Pending(), c.Now())
	}
}
