package sdnotify

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

var errDown = errors.New("no upstream is healthy")

func TestSuperviseReady(t *testing.T) {
	tests := []struct {
		name  string
		ready func() error
		want  string
	}{
		{"ready", func() error { return nil }, "READY=1\nSTATUS=serving\n"},
		// Never ready: READY=1 after the timeout all the same, saying why.
		{"timeout", func() error { return errDown }, "READY=1\nSTATUS=serving; not ready after 200ms: " + errDown.Error() + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := listenNotify(t, false)
			n := FromEnv(f.env(), nil)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				n.Supervise(ctx, Checks{Ready: tt.ready, ReadyTimeout: 200 * time.Millisecond})
			}()
			if got := f.mustRecv(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			// Never ready, it would go on asking until the context ends.
			cancel()
			<-done
		})
	}
}

func TestSuperviseBecomesReady(t *testing.T) {
	f := listenNotify(t, false)
	n := FromEnv(f.env(), nil)
	ready := make(chan struct{})
	go n.Supervise(t.Context(), Checks{
		Ready: func() error {
			select {
			case <-ready:
				return nil
			default:
				return errDown
			}
		},
		ReadyTimeout: time.Hour,
	})
	f.none(3 * readyPoll) // not before it is ready
	close(ready)
	if got := f.mustRecv(); got != "READY=1\nSTATUS=serving\n" {
		t.Errorf("got %q, want READY=1", got)
	}
}

// TestSuperviseLateReady checks that a proxy reported ready after the
// timeout says so again, STATUS=serving, once it is.
func TestSuperviseLateReady(t *testing.T) {
	f := listenNotify(t, false)
	n := FromEnv(f.env(), nil)
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Supervise(t.Context(), Checks{
			Ready: func() error {
				select {
				case <-ready:
					return nil
				default:
					return errDown
				}
			},
			ReadyTimeout: 100 * time.Millisecond,
		})
	}()
	if got := f.mustRecv(); !strings.HasPrefix(got, "READY=1\nSTATUS=serving; not ready after 100ms") {
		t.Fatalf("got %q, want READY=1 saying it is not ready", got)
	}
	close(ready)
	if got := f.mustRecv(); got != "STATUS=serving\n" {
		t.Errorf("got %q, want STATUS=serving", got)
	}
	<-done // no watchdog: nothing left to do
}

// TestWatchdog checks that pings follow the probe: every half timeout
// while it answers, none while it fails or hangs, and again once it
// answers.
func TestWatchdog(t *testing.T) {
	const timeout = 200 * time.Millisecond
	f := listenNotify(t, true)
	n := FromEnv(f.env("WATCHDOG_USEC="+strconv.Itoa(int(timeout.Microseconds())), "WATCHDOG_PID="+strconv.Itoa(os.Getpid())), nil)
	type mode int
	const (
		answer mode = iota
		fail
		hang
	)
	modes := make(chan mode, 1)
	modes <- answer
	current := answer
	alive := func(ctx context.Context) error {
		select {
		case current = <-modes:
		default:
		}
		switch current {
		case fail:
			return errDown
		case hang:
			<-ctx.Done() // a stuck listener: only the probe's deadline ends it
			return ctx.Err()
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Supervise(ctx, Checks{Ready: func() error { return nil }, Alive: alive})
	}()
	t.Cleanup(func() { cancel(); <-done })

	if got := f.mustRecv(); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	for range 3 {
		if got := f.mustRecv(); got != "WATCHDOG=1\n" {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
	}
	for _, m := range []mode{fail, hang} {
		modes <- m
		// The ping already on its way may still come; then none for
		// more than a whole watchdog timeout, which systemd would punish.
		f.drain(timeout / 2)
		f.none(2 * timeout)
		modes <- answer
		if got := f.mustRecv(); got != "WATCHDOG=1\n" {
			t.Fatalf("after recovering: got %q, want WATCHDOG=1", got)
		}
	}
}

// drain reads what arrives until nothing has for quiet.
func (f *fakeSystemd) drain(quiet time.Duration) {
	for {
		if _, err := f.recv(quiet); err != nil {
			return
		}
	}
}
