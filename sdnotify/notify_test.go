package sdnotify

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recvTimeout bounds the wait for one notification: generous, for a
// loaded machine; a test that expects none waits far less.
const recvTimeout = 5 * time.Second

// fakeSystemd is a NOTIFY_SOCKET that records what it is sent.
type fakeSystemd struct {
	t    *testing.T
	name string // as it goes in NOTIFY_SOCKET
	conn *net.UnixConn
}

// listenNotify opens a notification socket, in the file system or, when
// abstract, in Linux's abstract namespace (systemd uses both).
func listenNotify(t *testing.T, abstract bool) *fakeSystemd {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	if abstract {
		name = "@dotproxy-sdnotify-test-" + rand.Text()
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeSystemd{t: t, name: name, conn: c}
}

// env returns a getenv with NOTIFY_SOCKET set to the fake and vars, as
// NAME=value, besides.
func (f *fakeSystemd) env(vars ...string) func(string) string {
	m := map[string]string{"NOTIFY_SOCKET": f.name}
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return func(k string) string { return m[k] }
}

// recv returns the next datagram, or fails the test after wait.
func (f *fakeSystemd) recv(wait time.Duration) (string, error) {
	buf := make([]byte, 4096)
	if err := f.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		f.t.Fatal(err)
	}
	n, err := f.conn.Read(buf)
	return string(buf[:n]), err
}

func (f *fakeSystemd) mustRecv() string {
	f.t.Helper()
	msg, err := f.recv(recvTimeout)
	if err != nil {
		f.t.Fatalf("no notification: %v", err)
	}
	return msg
}

// none checks that nothing arrives within wait.
func (f *fakeSystemd) none(wait time.Duration) {
	f.t.Helper()
	if msg, err := f.recv(wait); err == nil {
		f.t.Fatalf("got %q, want nothing", msg)
	}
}

func TestStates(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprint("abstract=", abstract), func(t *testing.T) {
			f := listenNotify(t, abstract)
			n := FromEnv(f.env(), nil)
			if !n.Enabled() {
				t.Fatal("not enabled with NOTIFY_SOCKET set")
			}
			tests := []struct {
				send func() error
				want string // a prefix of the datagram
			}{
				{func() error { return n.Ready("") }, "READY=1\n"},
				{func() error { return n.Ready("serving") }, "READY=1\nSTATUS=serving\n"},
				{n.Reloading, "RELOADING=1\nMONOTONIC_USEC="},
				{n.Stopping, "STOPPING=1\n"},
				{n.Ping, "WATCHDOG=1\n"},
			}
			for _, tt := range tests {
				if err := tt.send(); err != nil {
					t.Fatal(err)
				}
				if got := f.mustRecv(); !strings.HasPrefix(got, tt.want) {
					t.Errorf("got %q, want it to start %q", got, tt.want)
				}
			}
		})
	}
}

func TestReloadingMonotonic(t *testing.T) {
	f := listenNotify(t, false)
	n := FromEnv(f.env(), nil)
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	msg := f.mustRecv()
	_, v, ok := strings.Cut(msg, "MONOTONIC_USEC=")
	us, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if !ok || err != nil || us == 0 {
		t.Fatalf("%q: want MONOTONIC_USEC=<positive microseconds>", msg)
	}
}

func TestNoSocket(t *testing.T) {
	var nilNotifier *Notifier
	for _, n := range []*Notifier{FromEnv(func(string) string { return "" }, nil), nilNotifier} {
		if n.Enabled() || n.WatchdogTimeout() != 0 {
			t.Errorf("%+v: enabled or watchdog on without NOTIFY_SOCKET", n)
		}
		if err := n.Ready("x"); err != nil {
			t.Errorf("Ready without a socket: %v", err)
		}
		n.Supervise(context.Background(), Checks{}) // returns at once
	}
}

func TestWatchdogTimeout(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		name string
		vars []string
		want time.Duration
	}{
		{"off", nil, 0},
		{"on", []string{"WATCHDOG_USEC=30000000"}, 30 * time.Second},
		{"this process", []string{"WATCHDOG_USEC=2000000", "WATCHDOG_PID=" + self}, 2 * time.Second},
		{"another process", []string{"WATCHDOG_USEC=2000000", "WATCHDOG_PID=1"}, 0},
		{"garbage", []string{"WATCHDOG_USEC=soon"}, 0},
		{"zero", []string{"WATCHDOG_USEC=0"}, 0},
	}
	f := listenNotify(t, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromEnv(f.env(tt.vars...), nil).WatchdogTimeout(); got != tt.want {
				t.Errorf("WatchdogTimeout() = %v, want %v", got, tt.want)
			}
		})
	}
}

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
			done := make(chan struct{})
			go func() {
				defer close(done)
				n.Supervise(context.Background(), Checks{Ready: tt.ready, ReadyTimeout: 200 * time.Millisecond})
			}()
			if got := f.mustRecv(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			<-done // no watchdog: Supervise returns after READY=1
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
