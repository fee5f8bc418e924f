package listener

import (
	"context"
	"testing"
	"time"
)

// TestDeadlinesShareAWindow: queries that start within one window share
// its context, which gives each of them the query timeout and at most one
// window more; the next window has its own; none ends before its
// deadline but with the parent.
func TestDeadlinesShareAWindow(t *testing.T) {
	tests := []struct {
		name      string
		timeout   time.Duration
		wantWidth time.Duration
	}{
		{"default timeout", 4 * time.Second, maxDeadlineWindow},
		{"short timeout", 80 * time.Millisecond, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, cancel := context.WithCancel(context.Background())
			defer cancel()
			d := newDeadlines(tt.timeout)
			if d.width != tt.wantWidth {
				t.Fatalf("window width %v, want %v", d.width, tt.wantWidth)
			}
			t0 := time.Now()
			first := d.context(parent, t0)
			within := d.context(parent, t0.Add(d.width-time.Nanosecond))
			if within != first {
				t.Error("a query starting within the window got a context of its own")
			}
			// Every query of the window gets at least the timeout, and at
			// most one window more.
			dl, ok := first.Deadline()
			if !ok {
				t.Fatal("the window's context has no deadline")
			}
			for _, start := range []time.Time{t0, t0.Add(d.width - time.Nanosecond)} {
				if left := dl.Sub(start); left < tt.timeout || left > tt.timeout+d.width {
					t.Errorf("a query starting at +%v has %v, want [%v, %v]",
						start.Sub(t0), left, tt.timeout, tt.timeout+d.width)
				}
			}
			next := d.context(parent, t0.Add(d.width))
			if next == first {
				t.Fatal("a query starting after the window took its context")
			}
			if dl2, _ := next.Deadline(); !dl2.After(dl) {
				t.Errorf("the next window ends at %v, not after the first's %v", dl2, dl)
			}
			// Neither window ends when another opens: their queries may
			// still run.
			if first.Err() != nil {
				t.Errorf("the first window's context ended early: %v", first.Err())
			}
			// The parent's end (shutdown) ends every window at once.
			cancel()
			for i, ctx := range []context.Context{first, next} {
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
					t.Fatalf("window %d outlived its parent", i)
				}
			}
		})
	}
}

// TestDeadlinesEnd: a window's context ends at its deadline by itself.
func TestDeadlinesEnd(t *testing.T) {
	d := newDeadlines(30 * time.Millisecond)
	ctx := d.context(context.Background(), time.Now())
	select {
	case <-ctx.Done():
		if ctx.Err() != context.DeadlineExceeded {
			t.Fatalf("ended with %v, want the deadline", ctx.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a window's context did not end at its deadline")
	}
}
