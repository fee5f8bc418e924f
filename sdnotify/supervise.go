package sdnotify

import (
	"context"
	"time"
)

// readyPoll is how often readiness is asked while starting: a tenth of a
// second is quick next to an upstream's first TLS handshake, and the
// check is a few loads.
const readyPoll = 100 * time.Millisecond

// DefaultReadyTimeout bounds the wait for readiness. An upstream that
// cannot be reached at boot (the WAN link still coming up) must not fail
// the unit: after this the proxy reports ready all the same, serving
// local names and its cache, and the health checker brings the upstreams
// in when they answer. It is well inside systemd's TimeoutStartSec (90 s
// by default).
const DefaultReadyTimeout = 15 * time.Second

// Checks are what Supervise asks of the running proxy.
type Checks struct {
	// Ready returns nil once the proxy serves: listeners bound and an
	// upstream healthy.
	Ready func() error
	// ReadyTimeout bounds the wait for Ready; 0 is DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Alive asks the proxy something through the path a query takes and
	// returns nil when it answered. It must give up when ctx ends. A
	// proxy that is stuck (a deadlock, a listener loop that died) fails
	// it, the watchdog goes without its ping, and systemd restarts the
	// service.
	Alive func(ctx context.Context) error
}

// statusPoll is how often readiness is asked after READY=1 went out
// without it, so that systemctl status stops saying "not ready" soon
// after an upstream answers.
const statusPoll = time.Second

// Supervise sends READY=1 once c.Ready returns nil or c.ReadyTimeout
// passes (then STATUS=serving once it does), and, while the watchdog is
// on, runs c.Alive every half watchdog timeout (as sd_watchdog_enabled(3)
// advises) and pings only after it succeeds. It returns when ctx ends,
// or when there is nothing left to do: at once when no service manager
// listens, once ready when there is no watchdog.
func (n *Notifier) Supervise(ctx context.Context, c Checks) {
	if !n.Enabled() {
		return
	}
	ready, sent := n.waitReady(ctx, c)
	if !sent {
		return
	}
	period := n.WatchdogTimeout() / 2
	watchdog := period > 0 && c.Alive != nil
	if watchdog {
		n.log.Info("systemd watchdog on", "timeout", n.WatchdogTimeout())
	} else if ready {
		return
	} else {
		period = statusPoll
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if watchdog {
			n.check(ctx, c.Alive, period)
		}
		if !ready && c.Ready() == nil {
			ready = true
			n.notify("status", n.send("STATUS=serving"))
			if !watchdog {
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waitReady polls c.Ready until it succeeds (ready and sent), the timeout
// passes (sent: READY=1 all the same) or ctx ends (nothing sent).
func (n *Notifier) waitReady(ctx context.Context, c Checks) (ready, sent bool) {
	wait := c.ReadyTimeout
	if wait <= 0 {
		wait = DefaultReadyTimeout
	}
	deadline := time.Now().Add(wait)
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		err := c.Ready()
		if err == nil {
			n.notify("ready", n.Ready("serving"))
			return true, true
		}
		if time.Now().After(deadline) {
			n.log.Warn("reporting ready while not ready", "waited", wait, "err", err)
			n.notify("ready", n.Ready("serving; not ready after "+wait.String()+": "+err.Error()))
			return false, true
		}
		select {
		case <-ctx.Done():
			return false, false
		case <-t.C:
		}
	}
}

// check runs alive within period, so that a hung probe misses the next
// ping too, and pings if it answered.
func (n *Notifier) check(ctx context.Context, alive func(context.Context) error, period time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, period)
	defer cancel()
	if err := alive(pctx); err != nil {
		if ctx.Err() == nil {
			n.log.Warn("watchdog probe failed; not pinging systemd", "err", err)
		}
		return
	}
	n.notify("watchdog", n.Ping())
}

// notify logs a failed notification: systemd gone or the socket full is
// worth a warning, never a reason to stop serving.
func (n *Notifier) notify(what string, err error) {
	if err != nil {
		n.log.Warn("notifying systemd", "state", what, "err", err)
	}
}
