package loglimit

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time for a Limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func lines(b *bytes.Buffer) []string     { return strings.Split(strings.TrimSpace(b.String()), "\n") }
func textLogger(b *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

func TestLimiter(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		steps    []time.Duration // clock advance before each call
		want     []string
	}{
		{"one", 0, []time.Duration{0}, []string{"level=WARN msg=m n=0"}},
		{"burst within the default interval", 0, []time.Duration{0, time.Second, time.Second, 7 * time.Second},
			[]string{"level=WARN msg=m n=0"}},
		{"the next after the interval counts the held back", 0,
			[]time.Duration{0, time.Second, time.Second, 8 * time.Second, 10 * time.Second},
			[]string{"level=WARN msg=m n=0", "level=WARN msg=m n=3 suppressed=2", "level=WARN msg=m n=4"}},
		{"own interval", time.Minute, []time.Duration{0, 30 * time.Second, 30 * time.Second},
			[]string{"level=WARN msg=m n=0", "level=WARN msg=m n=2 suppressed=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := &Limiter{Interval: tt.interval, now: c.now}
			var b bytes.Buffer
			log := textLogger(&b)
			for i, d := range tt.steps {
				c.advance(d)
				l.Warn(log, "m", "n", i)
			}
			if got := lines(&b); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestLimiterLevelOff: a level the logger does not want is neither
// logged nor counted, so turning it on later shows no stale count.
func TestLimiterLevelOff(t *testing.T) {
	c := newClock()
	l := &Limiter{now: c.now}
	var b bytes.Buffer
	warnOnly := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for range 5 {
		l.Info(warnOnly, "m")
	}
	if b.Len() != 0 {
		t.Fatalf("logged below the level: %s", b.String())
	}
	if ok, n := l.Allow(); !ok || n != 0 {
		t.Errorf("Allow after lines the level dropped = %v, %d; want true, 0", ok, n)
	}
}

// TestLimiterConcurrent: from many goroutines, with no time passing,
// exactly one line is let through and the rest are counted.
func TestLimiterConcurrent(t *testing.T) {
	c := newClock()
	l := &Limiter{now: c.now}
	var b bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &b, mu: &mu}, nil))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				l.Log(context.Background(), log, slog.LevelWarn, "m")
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 1 {
		t.Errorf("%d lines, want 1", n)
	}
	c.advance(DefaultInterval)
	if ok, n := l.Allow(); !ok || n != 7999 {
		t.Errorf("Allow = %v, %d; want true, 7999", ok, n)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
