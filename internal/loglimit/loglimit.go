// Package loglimit keeps a message that repeats with every query, or with
// every connection a flood opens, from flooding the log: one line of a
// kind per interval, the next one saying how many were held back.
//
// It owns the limiting only; the logger and the message's level and
// attributes stay the caller's. What a message may carry is the caller's
// concern too: a query name belongs at Debug, not in a limited line.
package loglimit

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultInterval is the interval of a Limiter whose Interval is zero:
// a person reading the log learns that something keeps happening, and
// how often, from one line in ten seconds.
const DefaultInterval = 10 * time.Second

// SuppressedKey is the attribute that counts the lines held back since
// the last one logged.
const SuppressedKey = "suppressed"

// Limiter lets one line through per Interval and counts the ones it holds
// back. Use one Limiter per kind of message. The zero value is ready to
// use; a Limiter must not be copied after first use. It is safe for
// concurrent use.
type Limiter struct {
	// Interval is the least time between two lines let through; zero
	// means DefaultInterval.
	Interval time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
	now        func() time.Time // time.Now; tests replace it
}

// Allow reports whether a line may be logged now and, if so, how many
// were held back since the last one. A caller that builds its own record
// uses it; most call Log.
func (l *Limiter) Allow() (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	t := now()
	interval := l.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	if !l.last.IsZero() && t.Sub(l.last) < interval {
		l.suppressed++
		return false, 0
	}
	suppressed = l.suppressed
	l.last, l.suppressed = t, 0
	return true, suppressed
}

// Log logs msg with args at level through log unless a line was let
// through less than Interval ago; the next line logged carries the count
// of those held back as SuppressedKey. A level log does not want costs
// nothing and counts nothing.
func (l *Limiter) Log(ctx context.Context, log *slog.Logger, level slog.Level, msg string, args ...any) {
	if !log.Enabled(ctx, level) {
		return
	}
	ok, suppressed := l.Allow()
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, SuppressedKey, suppressed)
	}
	log.Log(ctx, level, msg, args...)
}

// Warn is Log at slog.LevelWarn without a context.
func (l *Limiter) Warn(log *slog.Logger, msg string, args ...any) {
	l.Log(context.Background(), log, slog.LevelWarn, msg, args...)
}

// Info is Log at slog.LevelInfo without a context.
func (l *Limiter) Info(log *slog.Logger, msg string, args ...any) {
	l.Log(context.Background(), log, slog.LevelInfo, msg, args...)
}
