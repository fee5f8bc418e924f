// Package sdnotify tells systemd about the proxy's life: READY=1 once it
// serves, RELOADING=1 and READY=1 around a reload, STOPPING=1 on the way
// out, and WATCHDOG=1 while an in-process probe still gets answers. It
// speaks the sd_notify datagram protocol with the standard library, so
// dotproxy needs neither libsystemd nor cgo.
//
// It owns the protocol and the watchdog loop, not what the probe asks
// or what readiness means: the caller passes both in. Outside systemd
// (no NOTIFY_SOCKET: a shell, Docker, OpenWrt's procd) every method is a
// no-op.
package sdnotify

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Notifier sends state changes to the service manager's notification
// socket. The zero value and a nil *Notifier send nothing.
type Notifier struct {
	addr     *net.UnixAddr // nil: not started by systemd with Type=notify
	watchdog time.Duration // WATCHDOG_USEC; 0 when the watchdog is off
	log      *slog.Logger
}

// FromEnv returns the Notifier the environment asks for: NOTIFY_SOCKET
// names the socket, WATCHDOG_USEC the watchdog's timeout, which applies
// only when WATCHDOG_PID is unset or names this process (systemd sets it
// so that a child that inherits the environment does not ping for its
// parent). getenv is os.Getenv outside tests; log may be nil.
func FromEnv(getenv func(string) string, log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{log: log}
	socket := getenv("NOTIFY_SOCKET")
	if socket == "" {
		return n
	}
	// An abstract socket's name starts with '@': on Linux the net
	// package turns that into the leading NUL byte the kernel expects.
	n.addr = &net.UnixAddr{Name: socket, Net: "unixgram"}
	n.watchdog = watchdogTimeout(getenv, log)
	return n
}

// watchdogTimeout parses WATCHDOG_USEC, 0 when the watchdog is off or
// meant for another process.
func watchdogTimeout(getenv func(string) string, log *slog.Logger) time.Duration {
	usec := getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0
	}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	us, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || us == 0 {
		log.Warn("ignoring WATCHDOG_USEC", "value", usec, "err", err)
		return 0
	}
	return time.Duration(us) * time.Microsecond
}

// Enabled reports whether a service manager listens: whether sending
// does anything.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// WatchdogTimeout is how long systemd waits for a ping before it kills
// the service; 0 when the watchdog is off.
func (n *Notifier) WatchdogTimeout() time.Duration {
	if !n.Enabled() {
		return 0
	}
	return n.watchdog
}

// Ready says the service has finished starting or reloading; status, if
// not empty, is shown by systemctl status.
func (n *Notifier) Ready(status string) error {
	if status == "" {
		return n.send("READY=1")
	}
	return n.send("READY=1", "STATUS="+status)
}

// Reloading says a reload has begun; Ready says it has ended. The
// monotonic time lets systemd (253 and later, Type=notify-reload) tell
// this reload from an earlier one; older versions ignore it.
func (n *Notifier) Reloading() error {
	if us, ok := monotonicUsec(); ok {
		return n.send("RELOADING=1", "MONOTONIC_USEC="+strconv.FormatUint(us, 10))
	}
	return n.send("RELOADING=1")
}

// Stopping says the service is shutting down.
func (n *Notifier) Stopping() error { return n.send("STOPPING=1") }

// Ping tells the watchdog the service is alive. Only a caller that has
// just seen it work should call it: see Supervise.
func (n *Notifier) Ping() error { return n.send("WATCHDOG=1") }

// send writes one datagram of newline-separated assignments, on a socket
// of its own as sd_notify does: nothing to keep open or to reconnect
// after systemd restarts.
func (n *Notifier) send(lines ...string) error {
	if !n.Enabled() {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notifying %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		return fmt.Errorf("notifying %s: %w", n.addr.Name, err)
	}
	return nil
}
