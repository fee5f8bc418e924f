package listener

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestDeadlinesNeverShort: workers ask for their queries' contexts at
// once and out of arrival order (a query that waited takes the window a
// later one opened). Every query still gets at least the query timeout
// from its own arrival, whichever window it takes; a query's own context
// (what a layer derives and cancels) ends no other query's.
func TestDeadlinesNeverShort(t *testing.T) {
	const (
		timeout = 4 * time.Second
		workers = 8
		each    = 200
	)
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := newDeadlines(timeout)
	t0 := time.Now()
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Arrivals up to 30 windows back, in no order.
				start := t0.Add(time.Duration((i*7+w*13)%(30*int(d.width/time.Microsecond))) * time.Microsecond)
				ctx := d.context(parent, start)
				dl, ok := ctx.Deadline()
				switch {
				case !ok:
					errs <- fmt.Errorf("a context without a deadline")
				case dl.Sub(start) < timeout:
					errs <- fmt.Errorf("arrival +%v: %v left, want at least %v", start.Sub(t0), dl.Sub(start), timeout)
				}
				// A layer's own context, cancelled when its query ends.
				own, end := context.WithCancel(ctx)
				end()
				if own.Err() == nil || ctx.Err() != nil {
					errs <- fmt.Errorf("ending a query's own context ended the window's (%v) or not its own (%v)", ctx.Err(), own.Err())
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
	if n > 5 {
		t.Errorf("and %d more", n-5)
	}
}
