// Package clocktest provides Fake, a manually advanced clock.Clock for
// tests.
package clocktest

import (
	"sync"
	"time"

	"github.com/ovnsec/ovnsec/internal/clock"
)

// Fake is a manually advanced clock. Functions whose time has come run in
// Advance, on the caller's goroutine, in time order; tickers deliver on
// their channel (at most one pending tick, as time.Ticker).
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c      *Fake
	when   time.Time
	f      func()
	period time.Duration // > 0 for a ticker
	ch     chan time.Time
	done   bool
}

var _ clock.Clock = (*Fake)(nil)

// New starts a Fake at t.
func New(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d.
func (c *Fake) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, when: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// NewTicker ticks every d of fake time.
func (c *Fake) NewTicker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("clocktest: non-positive ticker period") // as time.NewTicker
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, when: c.now.Add(d), period: d, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return fakeTicker{t}
}

// fakeTicker is a ticker's handle: clock.Ticker's Stop returns nothing.
type fakeTicker struct{ t *fakeTimer }

func (k fakeTicker) C() <-chan time.Time { return k.t.ch }
func (k fakeTicker) Stop()               { k.t.Stop() }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// Advance moves the time forward by d, running due functions and ticks.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.done && !t.when.After(end) && (next == nil || t.when.Before(next.when)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			live := c.timers[:0]
			for _, t := range c.timers {
				if !t.done {
					live = append(live, t)
				}
			}
			c.timers = live
			c.mu.Unlock()
			return
		}
		if next.when.After(c.now) {
			c.now = next.when
		}
		if next.period > 0 {
			at := next.when
			next.when = next.when.Add(next.period)
			c.mu.Unlock()
			select {
			case next.ch <- at:
			default: // the reader is behind: drop, as time.Ticker
			}
			continue
		}
		next.done = true
		c.mu.Unlock()
		next.f()
	}
}

// Next returns when the earliest pending timer or tick is due.
func (c *Fake) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	ok := false
	for _, t := range c.timers {
		if !t.done && (!ok || t.when.Before(next)) {
			next, ok = t.when, true
		}
	}
	return next, ok
}

// Pending returns the number of timers and tickers not yet run or stopped.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}
