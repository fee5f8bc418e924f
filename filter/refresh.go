package filter

import (
	"context"
	"time"
)

// retryInterval is how soon a list that failed to load is tried again
// (unless the refresh period is shorter): a router that boots before its
// uplink gets its lists minutes after the link comes up, not a day.
const retryInterval = 10 * time.Minute

// Start refreshes the lists in the background, each every Refresh, until
// ctx ends or Stop is called. A list loaded from its on-disk copy is
// fetched at once. Calling Start again does nothing.
func (f *Filter) Start(ctx context.Context) {
	f.lifecycle.Do(func() {
		ctx, cancel := context.WithCancel(ctx)
		f.mu.Lock()
		f.cancel = cancel
		f.mu.Unlock()
		f.wg.Add(1)
		go f.refreshLoop(ctx)
		if f.localSrc.files != nil {
			f.wg.Add(1)
			go f.hostsLoop(ctx)
		}
	})
}

// Stop ends the refresh loop, abandoning a download in progress, and
// returns when it has ended. The lists in use stay in use.
func (f *Filter) Stop() {
	f.lifecycle.Do(func() {}) // a Start after Stop does nothing
	f.mu.Lock()
	cancel := f.cancel
	f.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	f.wg.Wait()
}

func (f *Filter) refreshLoop(ctx context.Context) {
	defer f.wg.Done()
	if len(f.lists) == 0 {
		return
	}
	now := time.Now()
	due := make([]time.Time, len(f.lists))
	for i, l := range f.lists {
		due[i] = now.Add(f.refresh)
		if l.stats().FromCache {
			due[i] = now
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := due[0]
		for _, d := range due[1:] {
			if d.Before(next) {
				next = d
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		for i, l := range f.lists {
			if ctx.Err() != nil {
				return
			}
			if !time.Now().Before(due[i]) {
				due[i] = time.Now().Add(f.refreshList(ctx, l))
			}
		}
	}
}

// refreshList loads a new version of l and returns when to try next.
func (f *Filter) refreshList(ctx context.Context, l *list) time.Duration {
	err := l.load(ctx, f, false)
	if err == nil || ctx.Err() != nil {
		return f.refresh
	}
	f.log.Warn("list not refreshed, keeping the version in use", "list", ListName(l.source), "err", err)
	return min(f.refresh, retryInterval)
}

// refreshAll refreshes every list now, one after the other: what the
// loop does when all are due, for tests.
func (f *Filter) refreshAll(ctx context.Context) {
	for _, l := range f.lists {
		f.refreshList(ctx, l)
	}
}
