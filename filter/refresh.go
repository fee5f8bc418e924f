package filter

import (
	"context"
	"time"
)

const (
	// firstRetry is how soon a list that failed to load is tried again
	// the first time; each failure in a row doubles the wait, up to
	// retryInterval. A router that boots before its uplink gets its lists
	// seconds after the link comes up, and a list server that is down is
	// not asked every few seconds all day.
	firstRetry = 5 * time.Second
	// retryInterval is the longest wait between tries of a failing list
	// (unless the refresh period is shorter).
	retryInterval = 10 * time.Minute
	// maxLoads bounds the lists loading at once: a list is parsed as it
	// downloads, and a router's memory is small. It is more than one so
	// that a list server that hangs does not hold the others back.
	maxLoads = 2
)

// Start loads, in the background, every list that has no version yet
// (at once) and those loaded from their on-disk copy (at once), then
// refreshes each every Refresh, until ctx ends or Stop is called. Each
// list has a loop of its own, so that a slow list server delays only its
// list. Calling Start again does nothing.
func (f *Filter) Start(ctx context.Context) {
	f.lifecycle.Do(func() {
		ctx, cancel := context.WithCancel(ctx)
		f.mu.Lock()
		f.cancel = cancel
		f.mu.Unlock()
		for _, l := range f.lists {
			f.wg.Add(1)
			go f.keepFresh(ctx, l)
		}
		if f.localSrc.files != nil {
			f.wg.Add(1)
			go f.hostsLoop(ctx)
		}
	})
}

// Stop ends the refresh loops, abandoning downloads in progress, and
// returns when they have ended. The lists in use stay in use.
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

// keepFresh is l's refresh loop.
func (f *Filter) keepFresh(ctx context.Context, l *list) {
	defer f.wg.Done()
	wait := f.refresh
	if s := l.stats(); s.FromCache || s.Pending {
		wait = 0
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	failed := 0 // failures in a row
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		select {
		case f.loads <- struct{}{}:
		case <-ctx.Done():
			return
		}
		ok := f.refreshList(ctx, l)
		<-f.loads
		if ctx.Err() != nil {
			return
		}
		failed++
		if ok {
			failed = 0
		}
		timer.Reset(f.nextTry(failed))
	}
}

// nextTry is how long to wait before loading a list again after failed
// failures in a row (0: it loaded).
func (f *Filter) nextTry(failed int) time.Duration {
	if failed == 0 {
		return f.refresh
	}
	wait := firstRetry
	for i := 1; i < failed && wait < retryInterval; i++ {
		wait *= 2
	}
	return min(f.refresh, wait, retryInterval)
}

// refreshList loads a new version of l and reports whether it loaded (or
// was not modified).
func (f *Filter) refreshList(ctx context.Context, l *list) bool {
	err := l.load(ctx, f, false)
	if err == nil || ctx.Err() != nil {
		return err == nil
	}
	if l.table.Load() == nil {
		f.log.Warn("list not loaded yet, filtering without it; trying again", "list", l.name, "err", err)
	} else {
		f.log.Warn("list not refreshed, keeping the version in use", "list", l.name, "err", err)
	}
	return false
}

// refreshAll refreshes every list now, one after the other, for tests.
func (f *Filter) refreshAll(ctx context.Context) {
	for _, l := range f.lists {
		f.refreshList(ctx, l)
	}
}
