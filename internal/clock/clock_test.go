package clock

import (
	"testing"
	"time"
)

func TestReal(t *testing.T) {
	c := Or(nil)
	done := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(done) })
	<-done
	tk := c.NewTicker(time.Millisecond)
	<-tk.C()
	tk.Stop()
	if time.Since(c.Now()) > time.Minute {
		t.Fatal("Now is not the wall clock")
	}
}
