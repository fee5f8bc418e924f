package cache

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// TestConcurrentMisses: misses on one key while its query is in flight
// wait for that query; each gets its own answer, with its own ID and
// question case.
func TestConcurrentMisses(t *testing.T) {
	const n = 50
	release := make(chan struct{})
	up := &fakeUpstream{answer: func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
		<-release
		return withA(300, 1)(q), nil
	}}
	c, r := newCache(t, Options{Now: newClock().Now}, up)
	names := []string{"example.com.", "EXAMPLE.com.", "Example.Com."}
	var wg sync.WaitGroup
	answers := make([]*dns.Msg, n)
	for i := range n {
		wg.Go(func() {
			q := query(names[i%len(names)], dns.TypeA, i%2 == 0, false)
			q.Id = uint16(i)
			answers[i] = resolve(t, r, q)
		})
	}
	k := key{name: "example.com.", qtype: dns.TypeA, qclass: dns.ClassINET}
	h := k.hash(c.store.seed)
	waitFor(t, "every miss to join", func() bool {
		sh := c.store.shard(h)
		sh.mu.Lock()
		defer sh.mu.Unlock()
		f := sh.flights[h]
		return f != nil && f.waiters == n
	})
	close(release)
	wg.Wait()
	if up.count() != 1 {
		t.Fatalf("%d upstream queries, want 1", up.count())
	}
	for i, m := range answers {
		if m.Id != uint16(i) || m.Question[0].Name != names[i%len(names)] || len(m.Answer) != 1 {
			t.Fatalf("answer %d: %v", i, m)
		}
		for j := range i {
			if &m.Answer[0] == &answers[j].Answer[0] || m.Answer[0] == answers[j].Answer[0] {
				t.Fatalf("answers %d and %d share records", i, j)
			}
		}
	}
}

// TestNoAliasing: whatever a caller does to its response (rewriting
// TTLs, records, EDE, sections), the next hit is as it was stored.
func TestNoAliasing(t *testing.T) {
	up := answering(func(q *dns.Msg) *dns.Msg {
		m := withA(300, 2)(q)
		resolver.SetEDE(m, resolver.NewRequest(q), dns.ExtendedErrorCodeFiltered, "blocked by policy")
		return m
	})
	clk := newClock()
	_, r := newCache(t, Options{Now: clk.Now, ServeStale: true}, up)
	q := query("example.com.", dns.TypeA, true, false)
	scribble := func(m *dns.Msg) {
		m.Answer[0].Header().Ttl = 7
		m.Answer[0].(*dns.A).A[3] = 99
		m.Answer[1] = m.Answer[0]
		m.Answer = append(m.Answer[:1], m.Answer[0])
		if opt := m.IsEdns0(); opt != nil {
			opt.Option[0].(*dns.EDNS0_EDE).InfoCode = 0
			opt.Option = append(opt.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		}
		m.Question[0].Name = "scribbled."
	}
	check := func(what string, m *dns.Msg, wantTTL uint32) {
		t.Helper()
		if len(m.Answer) != 2 || m.Answer[0].(*dns.A).A.String() != "192.0.2.1" || m.Answer[1].(*dns.A).A.String() != "192.0.2.2" ||
			m.Answer[0].Header().Ttl != wantTTL || m.Question[0].Name != "example.com." {
			t.Fatalf("%s: %v", what, m)
		}
		if e := resolver.EDE(m); e == nil || e.InfoCode != dns.ExtendedErrorCodeFiltered || len(m.IsEdns0().Option) != 1 {
			t.Fatalf("%s: OPT %v, want the upstream's EDE alone", what, m.IsEdns0())
		}
	}
	scribble(resolve(t, r, q)) // the miss
	m := resolve(t, r, q)
	check("hit after the miss", m, 300)
	scribble(m)
	check("hit after a hit", resolve(t, r, q), 300)

	// A stale answer's EDE 3 goes to that client only.
	clk.advance(301 * time.Second)
	up.answer = unreachable().answer
	stale := resolve(t, r, q)
	if len(stale.IsEdns0().Option) != 2 {
		t.Fatalf("stale OPT %v, want the stored EDE and Stale Answer", stale.IsEdns0())
	}
	scribble(stale)
	stale = resolve(t, r, q)
	if e := resolver.EDE(stale); e == nil || e.InfoCode != dns.ExtendedErrorCodeFiltered || len(stale.IsEdns0().Option) != 2 {
		t.Fatalf("second stale answer OPT %v", stale.IsEdns0())
	}
}

// TestOwnQuery: the query sent upstream is the cache's own: the client's
// EDNS options (cookie, client subnet) and ID stay out of it, so they
// cannot shape an answer others get; and hop-by-hop options in the
// answer (NSID) are not stored.
func TestOwnQuery(t *testing.T) {
	up := answering(func(q *dns.Msg) *dns.Msg {
		m := withA(300, 1)(q)
		m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "6e73"}}
		return m
	})
	_, r := newCache(t, Options{Now: newClock().Now}, up)
	q := query("Example.COM.", dns.TypeA, true, true)
	q.Id = 4242
	q.CheckingDisabled = true
	opt := q.IsEdns0()
	opt.Option = append(opt.Option,
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
		&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(198, 51, 100, 0)})
	resolve(t, r, q)
	sent := up.lastQuery()
	if sent.Id == 4242 || sent.Question[0].Name != "example.com." || !sent.RecursionDesired || !sent.CheckingDisabled {
		t.Fatalf("sent %v", sent)
	}
	if o := sent.IsEdns0(); o == nil || !o.Do() || len(o.Option) != 0 {
		t.Fatalf("sent OPT %v, want DO and no options", o)
	}
	if m := resolve(t, r, q); len(m.IsEdns0().Option) != 0 {
		t.Fatalf("hit OPT %v, want no options", m.IsEdns0())
	}
}

// TestClose: Close waits for background queries; afterwards queries are
// still answered, by the wrapped resolver.
func TestClose(t *testing.T) {
	up := answering(withA(300, 1))
	c, r := newCache(t, Options{Now: newClock().Now}, up)
	c.Close()
	for range 2 {
		if m := resolve(t, r, query("example.com.", dns.TypeA, false, false)); len(m.Answer) != 1 {
			t.Fatalf("got %v", m)
		}
	}
	if up.count() != 2 {
		t.Fatalf("%d upstream queries after Close, want 2: nothing is stored", up.count())
	}
}

// TestJoinerOutlivesLeader: a miss that joined a flight which ended
// because its leader's time ran out, while its own has time, runs the
// query anew instead of failing with the leader's error: the rule the
// upstream flight follows too.
func TestJoinerOutlivesLeader(t *testing.T) {
	var calls sync.Mutex
	n := 0
	led := make(chan struct{})
	up := &fakeUpstream{answer: func(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
		calls.Lock()
		n++
		leading := n == 1
		calls.Unlock()
		if leading {
			close(led)
			<-ctx.Done() // the leader's query hangs until its client gives up
			return nil, ctx.Err()
		}
		return withA(300, 1)(q), nil
	}}
	c, r := newCache(t, Options{Now: newClock().Now}, up)
	leaderCtx, giveUp := context.WithTimeout(context.Background(), time.Minute)
	defer giveUp()
	go resolver.ResolveMsg(leaderCtx, r, query("example.com.", dns.TypeA, true, false))
	<-led
	joined := make(chan struct {
		m   *dns.Msg
		err error
	}, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		m, err := resolver.ResolveMsg(ctx, r, query("example.com.", dns.TypeA, true, false))
		joined <- struct {
			m   *dns.Msg
			err error
		}{m, err}
	}()
	k := key{name: "example.com.", qtype: dns.TypeA, qclass: dns.ClassINET}
	h := k.hash(c.store.seed)
	waitFor(t, "the second miss to join", func() bool {
		sh := c.store.shard(h)
		sh.mu.Lock()
		defer sh.mu.Unlock()
		f := sh.flights[h]
		return f != nil && f.waiters == 2
	})
	giveUp()
	res := <-joined
	if res.err != nil || res.m == nil || len(res.m.Answer) != 1 {
		t.Fatalf("joiner: %v %v; want the answer of a query of its own", res.m, res.err)
	}
}
