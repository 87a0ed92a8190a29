// A recording ChildSAHandler for the engine tests (a test double: it lives
// in a test file, not in the engine).

package ike

import (
	"sync"
	"time"
)

// NopHandler discards Child SA events.
type NopHandler struct{}

// HandleChildSA does nothing.
func (NopHandler) HandleChildSA(ChildEvent, ChildSA) {}

// Recorder is a ChildSAHandler that keeps every event.
type Recorder struct {
	mu     sync.Mutex
	events []RecordedEvent
	wake   chan struct{}
}

// RecordedEvent is one handler call.
type RecordedEvent struct {
	Event ChildEvent
	SA    ChildSA
}

// HandleChildSA records the event.
func (r *Recorder) HandleChildSA(ev ChildEvent, sa ChildSA) {
	r.mu.Lock()
	r.events = append(r.events, RecordedEvent{ev, sa})
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
	r.mu.Unlock()
}

// Events returns a copy of the events so far.
func (r *Recorder) Events() []RecordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RecordedEvent(nil), r.events...)
}

// Wait blocks until cond holds for the events or timeout passes, and
// reports whether it held.
func (r *Recorder) Wait(timeout time.Duration, cond func([]RecordedEvent) bool) bool {
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		if cond(r.events) {
			r.mu.Unlock()
			return true
		}
		if r.wake == nil {
			r.wake = make(chan struct{})
		}
		w := r.wake
		r.mu.Unlock()
		select {
		case <-w:
		case <-deadline:
			return false
		}
	}
}

// Count returns how many events of kind ev there are.
func Count(evs []RecordedEvent, ev ChildEvent) int {
	n := 0
	for _, e := range evs {
		if e.Event == ev {
			n++
		}
	}
	return n
}
