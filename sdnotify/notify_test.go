package sdnotify

import (
	"context"
	"crypto/rand"
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
