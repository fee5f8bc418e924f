package listener

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// maxDeadlineWindow is the longest a query's context may outlast the
// query timeout: the width of the window of start times that share one
// context.
const maxDeadlineWindow = 10 * time.Millisecond

// deadlines hands every query that starts within one window the same
// context, which ends the query timeout after the window closes: one
// context, runtime timer and Done channel per window rather than per
// query, whose allocations and timer-heap work every cache miss paid. A
// query gets at least its timeout, counted from its arrival, and at most
// one window more than that, plus however long it waited before it was
// handed its context when it arrived before the current window opened
// (see context).
//
// A window's context is never cancelled before its deadline, since
// queries that started in it may still be running: the deadline, or the
// parent's end at shutdown, releases it. What a layer derives from it
// (a context of its own, an AfterFunc) that layer ends itself, as it must
// with any caller's context.
type deadlines struct {
	timeout, width time.Duration
	cur            atomic.Pointer[window]
	mu             sync.Mutex // serialises opening a window
}

// window is the context shared by the queries that start before end.
type window struct {
	ctx context.Context
	end time.Time
}

func newDeadlines(timeout time.Duration) *deadlines {
	return &deadlines{timeout: timeout, width: min(maxDeadlineWindow, timeout/16)}
}

// context returns the context of a query that started at now (its
// arrival), a child of parent: the same parent on every call. A start
// before the current window's takes that window, and gets more than its
// timeout, never less.
func (d *deadlines) context(parent context.Context, now time.Time) context.Context {
	if w := d.cur.Load(); w != nil && now.Before(w.end) {
		return w.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if w := d.cur.Load(); w != nil && now.Before(w.end) {
		return w.ctx
	}
	end := now.Add(d.width)
	ctx, cancel := context.WithDeadline(parent, end.Add(d.timeout))
	_ = cancel // never called: its deadline, or the parent's end, releases it (see deadlines)
	d.cur.Store(&window{ctx: ctx, end: end})
	return ctx
}
