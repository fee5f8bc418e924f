package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/proxy"
	"github.com/dotproxy/dotproxy/sdnotify"
)

// watchdogName is what the watchdog's probe asks: a name the proxy
// answers itself (RFC 6761 localhost), so that an upstream outage, which
// restarting cannot mend, never costs a ping.
const watchdogName = "localhost."

// supervise tells systemd, when it started dotproxy with Type=notify,
// that p is ready and, with WatchdogSec, that it still answers; see
// sdnotify.Supervise.
func supervise(ctx context.Context, n *sdnotify.Notifier, p *proxy.Proxy) {
	n.Supervise(ctx, sdnotify.Checks{Ready: p.Ready, Alive: probe(p)})
}

// probe asks the first UDP listener, over the loopback, what a client
// would ask: any reply, even REFUSED by the allow list, shows that the
// listener reads, a worker answers and the resolver chain returns.
func probe(p *proxy.Proxy) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		addrs := p.UDPAddrs()
		if len(addrs) == 0 {
			return errors.New("watchdog probe: no UDP listener")
		}
		addr := localAddr(addrs[0]).String()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "udp", addr)
		if err != nil {
			return fmt.Errorf("watchdog probe of %s: %w", addr, err)
		}
		defer conn.Close()
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		} else {
			conn.SetDeadline(time.Now().Add(healthcheckTimeout))
		}
		c := &dns.Conn{Conn: conn}
		q := new(dns.Msg).SetQuestion(watchdogName, dns.TypeA)
		if err := c.WriteMsg(q); err != nil {
			return fmt.Errorf("watchdog probe of %s: %w", addr, err)
		}
		if _, err := c.ReadMsg(); err != nil {
			return fmt.Errorf("watchdog probe of %s: %w", addr, err)
		}
		return nil
	}
}
