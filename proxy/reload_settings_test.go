package proxy

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// TestReloadAppliesEverySetting: each setting the README says a reload
// applies takes effect on the running proxy, each checked by what it
// does. (Upstreams, allow and the lists have tests of their own above.)
func TestReloadAppliesEverySetting(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*config.Config)
		check  func(t *testing.T, tb *testbed)
	}{
		{"tcp.idle_timeout", func(c *config.Config) { c.TCP.IdleTimeout = 50 * time.Millisecond },
			func(t *testing.T, tb *testbed) {
				c := dialTCP(t, tb.tcp)
				waitClosedConn(t, c)
			}},
		{"tcp.max_per_client", func(c *config.Config) { c.TCP.MaxPerClient = 1 },
			func(t *testing.T, tb *testbed) {
				first := dialTCP(t, tb.tcp)
				defer first.Close()
				if _, err := askOn(first, "first.example"); err != nil {
					t.Fatal(err)
				}
				waitClosedConn(t, dialTCP(t, tb.tcp))
			}},
		{"tcp.max_connections", func(c *config.Config) { c.TCP.MaxConnections = 1 },
			func(t *testing.T, tb *testbed) {
				first := dialTCP(t, tb.tcp)
				defer first.Close()
				if _, err := askOn(first, "first.example"); err != nil {
					t.Fatal(err)
				}
				waitClosedConn(t, dialTCP(t, tb.tcp))
			}},
		{"query_timeout", func(c *config.Config) { c.Timeout, c.QueryTimeout = 100*time.Millisecond, 200*time.Millisecond },
			func(t *testing.T, tb *testbed) {
				tb.ups[0].SetHandler(dottest.Delay(time.Second, dottest.Answer("192.0.2.7")))
				if r, err := ask(t, "udp", tb.udp, "slow.example"); err != nil || r.Rcode != dns.RcodeServerFailure {
					t.Fatalf("a query slower than the new query_timeout: %v %v", r, err)
				}
			}},
		{"cache.enabled", func(c *config.Config) { c.Cache.Enabled = false },
			func(t *testing.T, tb *testbed) {
				var asked atomic.Int64 // not the health probes
				answer := dottest.Answer("192.0.2.7")
				tb.ups[0].SetHandler(func(q *dns.Msg, reply func(*dns.Msg)) {
					if q.Question[0].Name == "twice.example." {
						asked.Add(1)
					}
					answer(q, reply)
				})
				for range 2 {
					if _, err := ask(t, "udp", tb.udp, "twice.example"); err != nil {
						t.Fatal(err)
					}
				}
				if n := asked.Load(); n != 2 {
					t.Fatalf("%d upstream queries for two asks, want 2 with the cache off", n)
				}
			}},
		{"policy", func(c *config.Config) { c.Policy = "round_robin" },
			func(t *testing.T, tb *testbed) {
				if p := tb.proxy.gen.Load().cfg.Policy; p != "round_robin" {
					t.Fatalf("policy %q", p)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTestbed(t, 1, nil)
			cfg := clone(tb.cfg)
			tc.change(cfg)
			if err := tb.proxy.Reload(cfg); err != nil {
				t.Fatal(err)
			}
			tc.check(t, tb)
		})
	}
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func askOn(c net.Conn, name string) (*dns.Msg, error) {
	dc := &dns.Conn{Conn: c}
	q := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeA)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if err := dc.WriteMsg(q); err != nil {
		return nil, err
	}
	return dc.ReadMsg()
}

// waitClosedConn fails t unless the proxy closes c within a generous
// deadline.
func waitClosedConn(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the connection was not closed")
			}
			return
		}
	}
}
