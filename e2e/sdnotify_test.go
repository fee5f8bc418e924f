package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// notifyWait bounds the wait for one notification from dotproxy: its
// readiness comes within the first health probe, a ping every 200 ms.
const notifyWait = 20 * time.Second

// TestSystemdNotify runs dotproxy as systemd's Type=notify with
// WatchdogSec would, with a fake NOTIFY_SOCKET: READY=1 once it serves,
// WATCHDOG=1 pings, RELOADING=1 and READY=1 around a SIGHUP reload, and
// STOPPING=1 after SIGTERM.
func TestSystemdNotify(t *testing.T) {
	short(t)
	sock := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	// next returns the next notification that starts with prefix,
	// skipping watchdog pings unless those are what is asked for.
	next := func(prefix string) string {
		t.Helper()
		buf := make([]byte, 4096)
		deadline := time.Now().Add(notifyWait)
		for {
			ln.SetReadDeadline(deadline)
			n, err := ln.Read(buf)
			if err != nil {
				t.Fatalf("no notification starting %q: %v", prefix, err)
			}
			if msg := string(buf[:n]); strings.HasPrefix(msg, prefix) {
				return msg
			}
		}
	}
	// Registered before dotproxy starts, so that it runs after the
	// SIGTERM of dotproxy's own cleanup.
	t.Cleanup(func() { next("STOPPING=1") })

	p := newPKI(t)
	up := dottest.Start(t, dottest.Options{Cert: p.leafCert(t)})
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{{name: "up", addr: up.Addr(), caFile: p.caFile}},
		env:       []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"},
	})
	if got := next("READY=1"); got != "READY=1\nSTATUS=serving\n" {
		t.Errorf("got %q, want READY=1 with STATUS=serving: an upstream is healthy", got)
	}
	for range 2 {
		next("WATCHDOG=1")
	}
	d.proc.signal(syscall.SIGHUP)
	if got := next("RELOADING=1"); !strings.Contains(got, "\nMONOTONIC_USEC=") {
		t.Errorf("got %q, want MONOTONIC_USEC with RELOADING=1", got)
	}
	next("READY=1")
	next("WATCHDOG=1")
}
