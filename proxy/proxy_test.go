package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/resolver"
)

// testbed is a running proxy in front of in-process DoT upstreams.
type testbed struct {
	ca     *dottest.CA
	caFile string
	cfg    *config.Config // as the proxy was built; tests copy it to reload
	proxy  *Proxy
	ups    []*dottest.Server
	udp    string
	tcp    string
}

// runProxy builds and starts a proxy for cfg as it is, logging to the
// test at Debug with -v, and shuts it down at cleanup.
func runProxy(t *testing.T, cfg *config.Config) *Proxy {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p, err := New(cfg, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

// newTestbed starts n upstreams and a proxy over them; tweak may change
// the configuration before the proxy is built.
func newTestbed(t *testing.T, n int, tweak func(*config.Config)) *testbed {
	t.Helper()
	ca := dottest.NewCA(t)
	caFile, _, _ := ca.WriteFiles(t, t.TempDir(), nil)
	cfg := config.Default()
	cfg.Listen = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}
	cfg.Upstreams = nil
	tb := &testbed{ca: ca, caFile: caFile}
	for i := range n {
		srv := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, "dns.test")})
		tb.ups = append(tb.ups, srv)
		cfg.Upstreams = append(cfg.Upstreams, config.Upstream{
			Name: string(rune('a' + i)), Address: srv.Addr(), TLSName: "dns.test", CAFile: caFile,
		})
	}
	cfg.Filter.CacheDir = t.TempDir()
	cfg.Admin = netip.AddrPort{} // one port for all tests; admin tests choose their own
	cfg.Health.Interval = 100 * time.Millisecond
	cfg.Health.DownInterval = 50 * time.Millisecond
	if tweak != nil {
		tweak(cfg)
	}
	p := runProxy(t, cfg)
	tb.proxy = p
	tb.cfg = cfg
	tb.udp = p.UDPAddrs()[0].String()
	tb.tcp = p.TCPAddrs()[0].String()
	return tb
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

func ask(t *testing.T, net, addr, name string) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 5 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	q.SetEdns0(1232, false)
	r, _, err := c.Exchange(q, addr)
	return r, err
}

func TestAnswersOverUDPAndTCP(t *testing.T) {
	tb := newTestbed(t, 2, nil)
	for _, tc := range []struct{ net, addr string }{{"udp", tb.udp}, {"tcp", tb.tcp}} {
		t.Run(tc.net, func(t *testing.T) {
			r, err := ask(t, tc.net, tc.addr, "example.com")
			if err != nil {
				t.Fatal(err)
			}
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Fatalf("answer: %v", r)
			}
		})
	}
}

// hammer sends workers × perWorker queries and returns how many did not
// come back NOERROR with an answer.
func hammer(t *testing.T, addr string, workers, perWorker int, during func(i int)) int64 {
	t.Helper()
	var bad atomic.Int64
	var wg sync.WaitGroup
	var sent atomic.Int64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				n := sent.Add(1)
				if during != nil && w == 0 {
					during(int(n))
				}
				r, err := ask(t, "udp", addr, "q"+string(rune('a'+w))+string(rune('a'+i%26))+".example")
				if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					bad.Add(1)
					t.Logf("query failed: err=%v r=%v", err, r)
				}
			}
		}()
	}
	wg.Wait()
	return bad.Load()
}

func TestNoQueryLostWhenAnUpstreamDies(t *testing.T) {
	tb := newTestbed(t, 3, func(c *config.Config) {
		c.Policy = "round_robin"
		c.Cache.Enabled = false // every query must cross to an upstream
	})
	var once sync.Once
	bad := hammer(t, tb.udp, 8, 40, func(n int) {
		if n > 40 {
			once.Do(tb.ups[0].Kill)
		}
	})
	if bad != 0 {
		t.Fatalf("%d of 320 queries lost or failed after an upstream died", bad)
	}
}

func TestNoQueryLostWhenAnUpstreamGoesSilent(t *testing.T) {
	tb := newTestbed(t, 3, func(c *config.Config) {
		c.Policy = "round_robin"
		c.Cache.Enabled = false     // every query must cross to an upstream
		c.Timeout = 3 * time.Second // hedging, not timeouts, must carry the load
	})
	var once sync.Once
	bad := hammer(t, tb.udp, 8, 40, func(n int) {
		if n > 40 {
			once.Do(func() { tb.ups[1].SetHandler(dottest.Silent()) })
		}
	})
	if bad != 0 {
		t.Fatalf("%d of 320 queries lost or failed after an upstream went silent", bad)
	}
	deadline := time.Now().Add(10 * time.Second)
	for tb.proxy.gen.Load().ups[1].Healthy() {
		if time.Now().After(deadline) {
			t.Fatal("silent upstream never marked down")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestGracefulShutdownAnswersInFlight(t *testing.T) {
	tb := newTestbed(t, 1, nil)
	tb.ups[0].SetHandler(dottest.Delay(300*time.Millisecond, dottest.Answer("192.0.2.7")))
	const n = 10
	errs := make(chan error, n)
	started := make(chan struct{}, n)
	for i := range n {
		go func() {
			started <- struct{}{}
			r, err := ask(t, "tcp", tb.tcp, "slow"+string(rune('a'+i))+".example")
			if err == nil && r.Rcode != dns.RcodeSuccess {
				err = io.ErrUnexpectedEOF
			}
			errs <- err
		}()
	}
	for range n {
		<-started
	}
	// Wait until the upstream holds every query, then shut down.
	deadline := time.Now().Add(5 * time.Second)
	for tb.ups[0].Queries() < n {
		if time.Now().After(deadline) {
			t.Fatalf("upstream saw %d of %d queries", tb.ups[0].Queries(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tb.proxy.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("in-flight query lost at shutdown: %v", err)
		}
	}
	if _, err := ask(t, "udp", tb.udp, "after.example"); err == nil {
		t.Error("answered a query after shutdown")
	}
}

// TestResolveAfterShutdown: a query reaching the proxy after Shutdown
// fails at once instead of waiting for a generation that never comes.
func TestResolveAfterShutdown(t *testing.T) {
	tb := newTestbed(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tb.proxy.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	q := new(dns.Msg).SetQuestion("late.example.", dns.TypeA)
	if _, err := tb.proxy.Resolve(ctx, resolver.NewRequest(q)); !errors.Is(err, errStopped) {
		t.Fatalf("Resolve after Shutdown: %v, want errStopped", err)
	}
}
