package proxy

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/upstream"
)

// clone copies a config deeply enough for a test to change its lists.
func clone(c *config.Config) *config.Config {
	d := *c
	d.Upstreams = slices.Clone(c.Upstreams)
	d.Listen = slices.Clone(c.Listen)
	return &d
}

// TestReloadUnderLoad: ten reloads while clients query, alternating the
// policy and the upstream set; not one query fails.
func TestReloadUnderLoad(t *testing.T) {
	tb := newTestbed(t, 3, func(c *config.Config) { c.Cache.Enabled = false })
	full := clone(tb.cfg)
	small := clone(tb.cfg)
	small.Upstreams = small.Upstreams[1:]
	small.Policy = "round_robin"

	var reloads atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 {
			cfg := full
			if i%2 == 0 {
				cfg = small
			}
			if err := tb.proxy.Reload(cfg); err != nil {
				t.Errorf("reload %d: %v", i, err)
			}
			reloads.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	bad := hammer(t, tb.udp, 6, 60, nil)
	<-done
	if bad != 0 {
		t.Fatalf("%d of 360 queries failed across %d reloads", bad, reloads.Load())
	}
}

// TestReloadKeepsAddsAndRemovesUpstreams: an unchanged upstream keeps its
// connection and health, a new one is used, a removed one is closed and
// asked nothing more.
func TestReloadKeepsAddsAndRemovesUpstreams(t *testing.T) {
	tb := newTestbed(t, 2, func(c *config.Config) {
		c.Policy = "ordered"
		c.Cache.Enabled = false
	})
	b := tb.ups[1]
	if _, err := ask(t, "udp", tb.udp, "before.example"); err != nil {
		t.Fatal(err)
	}
	removedUp, keptUp := tb.proxy.gen.Load().ups[0], tb.proxy.gen.Load().ups[1]
	// b gets its connection now: a hedge or a health probe after the
	// reload then reuses it, and only a rebuilt upstream dials b again.
	// Unconnected, any first use of b would dial it.
	if _, err := keptUp.Exchange(context.Background(), new(dns.Msg).SetQuestion("warm.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}

	c := dottest.Start(t, dottest.Options{Cert: tb.ca.Leaf(t, "dns.test")})
	cfg := clone(tb.cfg)
	cfg.Upstreams = []config.Upstream{
		{Name: "c", Address: c.Addr(), TLSName: "dns.test", CAFile: tb.caFile},
		cfg.Upstreams[1], // b, unchanged
	}
	bAccepts := b.Accepts()
	if err := tb.proxy.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := tb.proxy.gen.Load().ups[1]; got != keptUp {
		t.Fatal("the unchanged upstream was rebuilt, losing its connections and health")
	}
	for i := range 10 {
		if r, err := ask(t, "udp", tb.udp, "after"+string(rune('a'+i))+".example"); err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("after reload: %v %v", r, err)
		}
	}
	if c.Queries() < 10 {
		t.Errorf("the added upstream, first in order, got %d of 10 queries", c.Queries())
	}
	if slices.Contains(tb.proxy.gen.Load().ups, removedUp) {
		t.Fatal("the removed upstream is still in the serving generation")
	}
	// Closed, not merely idle: a closed upstream refuses to dial again,
	// where an idle one would reconnect and answer.
	probe := new(dns.Msg).SetQuestion("closed.example.", dns.TypeA)
	waitFor(t, "the removed upstream to be closed", func() bool {
		_, err := removedUp.Exchange(context.Background(), probe)
		return errors.Is(err, upstream.ErrConnClosed) && removedUp.OpenConns() == 0
	})
	if bAccepts == 0 || b.Accepts() != bAccepts {
		t.Errorf("the kept upstream was dialed again (%d connections, %d before)", b.Accepts(), bAccepts)
	}
}

// TestReloadErrorKeepsServing: a configuration that cannot be built is
// refused as a whole and the old one goes on serving.
func TestReloadErrorKeepsServing(t *testing.T) {
	tb := newTestbed(t, 1, nil)
	cfg := clone(tb.cfg)
	cfg.Upstreams[0].CAFile = filepath.Join(t.TempDir(), "missing.pem")
	cfg.Upstreams[0].Name = "renamed" // not taken over from the running generation
	cfg.Policy = "round_robin"
	if err := tb.proxy.Reload(cfg); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("reload with a missing CA file: %v", err)
	}
	if tb.proxy.gen.Load().cfg.Policy != tb.cfg.Policy {
		t.Fatal("a failed reload changed the running configuration")
	}
	if r, err := ask(t, "tcp", tb.tcp, "still.example"); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after a failed reload: %v %v", r, err)
	}
}

// TestReloadAppliesAllowAndLists: the access list and the filter change
// on reload; the listen address stays (it needs a restart).
func TestReloadAppliesAllowAndLists(t *testing.T) {
	tb := newTestbed(t, 1, nil)
	list := filepath.Join(t.TempDir(), "ads.txt")
	if err := os.WriteFile(list, []byte("||ads.example^\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := clone(tb.cfg)
	cfg.Filter.Blocklists = []string{list}
	cfg.Listen = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}
	if err := tb.proxy.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if r, _ := ask(t, "udp", tb.udp, "ads.example"); r == nil || r.Rcode != dns.RcodeNameError {
		t.Fatalf("blocked name after reload: %v", r)
	}
	cfg = clone(cfg)
	cfg.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if err := tb.proxy.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if r, _ := ask(t, "udp", tb.udp, "www.example"); r == nil || r.Rcode != dns.RcodeRefused {
		t.Fatalf("after allowing only 10/8: %v", r)
	}
}

// waitFor polls cond until it holds, failing t after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
