package clients

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/resolver"
)

// router is an in-process plain DNS server standing in for the house's
// router: it answers PTR queries from its names (reverse name → PTR
// target), NXDOMAIN for the rest, and counts the queries per name.
type router struct {
	srv   *dottest.PlainServer
	mu    sync.Mutex
	names map[string]string
	asked map[string]int
}

func startRouter(t *testing.T, names map[string]string) *router {
	t.Helper()
	r := &router{names: names, asked: make(map[string]int)}
	r.srv = dottest.StartPlain(t, func(q *dns.Msg, reply func(*dns.Msg)) {
		qn := q.Question[0].Name
		r.mu.Lock()
		r.asked[qn]++
		target, ok := r.names[qn]
		r.mu.Unlock()
		m := new(dns.Msg).SetReply(q)
		if !ok || q.Question[0].Qtype != dns.TypePTR {
			m.Rcode = dns.RcodeNameError
		} else {
			m.Answer = []dns.RR{&dns.PTR{Hdr: dns.RR_Header{Name: qn, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 600}, Ptr: target}}
		}
		reply(m)
	}, false)
	return r
}

// set names addr target from now on.
func (r *router) set(addr, target string) {
	rev, _ := dns.ReverseAddr(addr)
	r.mu.Lock()
	r.names[rev] = target
	r.mu.Unlock()
}

// queries returns how often addr's reverse name was asked.
func (r *router) queries(addr string) int {
	rev, _ := dns.ReverseAddr(addr)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.asked[rev]
}

// reverse resolves through the router the reverse names of 192.168/16
// and fd00::/8 and refuses the rest, as the proxy's forward rules do.
func (r *router) reverse() resolver.Resolver {
	return resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
		if !dns.IsSubDomain("168.192.in-addr.arpa.", req.Name) && !dns.IsSubDomain("d.f.ip6.arpa.", req.Name) {
			return resolver.Response{Msg: req.Reply(dns.RcodeRefused)}, nil
		}
		c := &dns.Client{Timeout: 2 * time.Second}
		m, _, err := c.ExchangeContext(ctx, req.Msg(), r.srv.Addr().String())
		return resolver.Response{Msg: m}, err
	})
}

// clock is a test clock, moved by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// start builds Names from opts, starts it and stops it at cleanup.
func start(t *testing.T, opts Options) *Names {
	t.Helper()
	n := New(opts)
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// eventually asks for addr's name until it is want, within a deadline.
func eventually(t *testing.T, n *Names, addr, want string) {
	t.Helper()
	a := netip.MustParseAddr(addr)
	deadline := time.Now().Add(5 * time.Second)
	for n.ClientName(a) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: named %q, want %q", addr, n.ClientName(a), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cached waits until the worker has published an answer for addr.
func cached(t *testing.T, n *Names, addr string) *entry {
	t.Helper()
	a := netip.MustParseAddr(addr)
	deadline := time.Now().Add(5 * time.Second)
	for {
		n.ClientName(a)
		if e := (*n.ptr.Load())[a]; e != nil {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no answer cached", addr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestHostsFirst: the hosts and lease files' name wins over PTR and is
// there at once; names are lower case without the trailing dot.
func TestHostsFirst(t *testing.T) {
	r := startRouter(t, map[string]string{})
	r.set("192.168.1.10", "ptr-name.lan.")
	hosts := map[netip.Addr]string{netip.MustParseAddr("192.168.1.10"): "NAS.", netip.MustParseAddr("fd00::10"): "nas.home.arpa."}
	n := start(t, Options{Hosts: func(a netip.Addr) string { return hosts[a] }, Reverse: r.reverse()})
	for addr, want := range map[string]string{"192.168.1.10": "nas", "fd00::10": "nas.home.arpa"} {
		if got := n.ClientName(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
	if q := r.queries("192.168.1.10"); q != 0 {
		t.Errorf("router asked %d times for a client the files name", q)
	}
	if got := n.ClientName(netip.Addr{}); got != "" {
		t.Errorf("dotproxy's own query named %q", got)
	}
}

// TestPTRNaming: a client the files do not know is named by the router's
// PTR answer, in the background: the first ask returns at once, unnamed.
// A client without a PTR record, and one outside the router's reverse
// zones, stay unnamed, and are not asked about again while that answer
// is cached.
func TestPTRNaming(t *testing.T) {
	r := startRouter(t, map[string]string{})
	r.set("192.168.1.23", "Kids-Tablet.lan.")
	r.set("fd00::23", "printer.lan.")
	n := start(t, Options{Reverse: r.reverse()})

	eventually(t, n, "192.168.1.23", "kids-tablet.lan")
	eventually(t, n, "fd00::23", "printer.lan")

	for _, addr := range []string{"192.168.1.99", "8.8.8.8"} {
		if e := cached(t, n, addr); e.name != "" {
			t.Errorf("%s: named %q, want none", addr, e.name)
		}
	}
	for range 100 {
		n.ClientName(netip.MustParseAddr("192.168.1.99"))
		n.ClientName(netip.MustParseAddr("8.8.8.8"))
	}
	// The worker takes asks in order: once a later client is named,
	// any new ask for the unnamed one would have been looked up.
	r.set("192.168.1.24", "tv.lan.")
	eventually(t, n, "192.168.1.24", "tv.lan")
	if q := r.queries("192.168.1.99"); q != 1 {
		t.Errorf("router asked %d times for a client without a name, want once (negative caching)", q)
	}
	if q := r.queries("8.8.8.8"); q != 0 {
		t.Errorf("router asked %d times for a public address, want never", q)
	}
}

// TestNoWait: while the router does not answer, asking for a name never
// waits; the name comes once it answers.
func TestNoWait(t *testing.T) {
	release := make(chan struct{})
	var asked atomic.Int64
	slow := resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
		asked.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return resolver.Response{}, ctx.Err()
		}
		m := req.Reply(dns.RcodeSuccess)
		m.Answer = []dns.RR{&dns.PTR{Hdr: dns.RR_Header{Name: req.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: "slow.lan."}}
		return resolver.Response{Msg: m}, nil
	})
	n := start(t, Options{Reverse: slow})
	a := netip.MustParseAddr("192.168.1.50")
	deadline := time.Now().Add(5 * time.Second)
	for asked.Load() == 0 {
		if n.ClientName(a) != "" {
			t.Fatal("named before the router answered")
		}
		if time.Now().After(deadline) {
			t.Fatal("no lookup started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The lookup is stuck: a burst of asks, for this client and many
	// others, comes back at once.
	begin := time.Now()
	for i := range 1000 {
		n.ClientName(netip.AddrFrom4([4]byte{192, 168, 2, byte(i)}))
		if n.ClientName(a) != "" {
			t.Fatal("named before the router answered")
		}
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("2000 asks took %v while a lookup hung", d)
	}
	close(release)
	eventually(t, n, "192.168.1.50", "slow.lan")
}

// TestRenewAndExpire: an answer past its TTL is looked up again when its
// client asked since (a rename on the router shows), and dropped when it
// did not.
func TestRenewAndExpire(t *testing.T) {
	r := startRouter(t, map[string]string{})
	r.set("192.168.1.30", "old-name.lan.")
	r.set("192.168.1.31", "gone.lan.")
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	n := New(Options{Reverse: r.reverse(), Now: clk.Now})
	n.sweepEvery = 5 * time.Millisecond
	n.Start()
	t.Cleanup(n.Stop)

	eventually(t, n, "192.168.1.30", "old-name.lan")
	eventually(t, n, "192.168.1.31", "gone.lan")
	// The worker cleared nothing yet; make the entries unused again as a
	// fresh answer is, then use only the first.
	for _, e := range *n.ptr.Load() {
		e.used.Store(false)
	}
	n.ClientName(netip.MustParseAddr("192.168.1.30"))
	r.set("192.168.1.30", "new-name.lan.")
	clk.add(maxTTL + time.Second)

	eventually(t, n, "192.168.1.30", "new-name.lan")
	deadline := time.Now().Add(5 * time.Second)
	for (*n.ptr.Load())[netip.MustParseAddr("192.168.1.31")] != nil {
		if time.Now().After(deadline) {
			t.Fatal("an unused expired name was kept")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if q := r.queries("192.168.1.31"); q != 1 {
		t.Errorf("the unused name was looked up %d times, want once", q)
	}
}

// TestBounded: however many addresses clients come from, no more than
// MaxNames answers are kept.
func TestBounded(t *testing.T) {
	r := startRouter(t, map[string]string{})
	const limit = 8
	n := start(t, Options{Reverse: r.reverse(), MaxNames: limit})
	for i := range 40 {
		addr := fmt.Sprintf("192.168.3.%d", i)
		r.set(addr, fmt.Sprintf("host-%d.lan.", i))
		eventually(t, n, addr, fmt.Sprintf("host-%d.lan", i))
		if got := len(*n.ptr.Load()); got > limit {
			t.Fatalf("%d answers kept, want at most %d", got, limit)
		}
	}
}

// TestEvictPrefersAbsentNames: a full cache gives up an address without
// a name before a name.
func TestEvictPrefersAbsentNames(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cache := map[netip.Addr]*entry{
		netip.MustParseAddr("192.168.1.1"): {name: "a", expires: now},
		netip.MustParseAddr("192.168.1.2"): {expires: now.Add(time.Hour)},
		netip.MustParseAddr("192.168.1.3"): {name: "c", expires: now.Add(time.Minute)},
	}
	evict(cache)
	if _, ok := cache[netip.MustParseAddr("192.168.1.2")]; ok || len(cache) != 2 {
		t.Errorf("kept %v, want the unnamed address dropped", cache)
	}
	evict(cache)
	if _, ok := cache[netip.MustParseAddr("192.168.1.1")]; ok || len(cache) != 1 {
		t.Errorf("kept %v, want the name expiring first dropped", cache)
	}
}
