package cache

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// testTimeout bounds anything a test waits on, so that a bug fails the
// test instead of hanging it; nothing is expected to take near as long.
const testTimeout = 10 * time.Second

// clock is an injected clock that moves only when the test says.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fakeUpstream is the resolver a cache wraps in tests: it answers with
// answer and counts the queries that reach it, keeping the last.
type fakeUpstream struct {
	answer  func(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
	queries atomic.Int64
	mu      sync.Mutex
	last    *dns.Msg
}

func (u *fakeUpstream) Resolve(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
	if req.Inline {
		return resolver.Response{}, resolver.ErrWouldWait // as the selector
	}
	q := req.Msg()
	u.queries.Add(1)
	u.mu.Lock()
	u.last = q.Copy()
	u.mu.Unlock()
	m, err := u.answer(ctx, q)
	return resolver.Response{Msg: m}, err
}

func (u *fakeUpstream) count() int64 { return u.queries.Load() }

func (u *fakeUpstream) lastQuery() *dns.Msg {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// answering returns a fake upstream whose every answer is build(q).
func answering(build func(q *dns.Msg) *dns.Msg) *fakeUpstream {
	return &fakeUpstream{answer: func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
		return build(q), nil
	}}
}

// unreachable returns a fake upstream that fails every query as the selector
// does when no upstream can be reached.
func unreachable() *fakeUpstream {
	return &fakeUpstream{answer: func(context.Context, *dns.Msg) (*dns.Msg, error) {
		return nil, &resolver.Error{Code: dns.ExtendedErrorCodeNetworkError, Text: "upstreams unreachable"}
	}}
}

// withA answers q with n A records of TTL ttl.
func withA(ttl uint32, n int) func(q *dns.Msg) *dns.Msg {
	return func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetReply(q)
		m.RecursionAvailable = true
		for i := range n {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl},
				A:   net.IPv4(192, 0, 2+byte(i/250), byte(1+i%250)).To4(),
			})
		}
		if opt := q.IsEdns0(); opt != nil {
			m.SetEdns0(1232, opt.Do())
		}
		return m
	}
}

// negativeAnswer answers q with rcode and, unless soaTTL is 0, an SOA of
// that TTL and MINIMUM minimum in the authority section.
func negativeAnswer(rcode int, soaTTL, minimum uint32) func(q *dns.Msg) *dns.Msg {
	return func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg).SetRcode(q, rcode)
		if soaTTL > 0 {
			m.Ns = []dns.RR{soa(soaTTL, minimum)}
		}
		return m
	}
}

func soa(ttl, minimum uint32) *dns.SOA {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:  "ns.example.com.", Mbox: "hostmaster.example.com.",
		Serial: 1, Refresh: 7200, Retry: 3600, Expire: 1209600, Minttl: minimum,
	}
}

// newCache returns a cache with the test clock (unless opts has one),
// wrapping up, and the resolver it makes. It is closed at cleanup.
func newCache(t testing.TB, opts Options, up resolver.Resolver) (*Cache, resolver.Resolver) {
	t.Helper()
	c := New(opts)
	t.Cleanup(c.Close)
	return c, c.Middleware()(up)
}

// query builds a query for name and qtype; edns adds an OPT record with
// the DO bit do.
func query(name string, qtype uint16, edns, do bool) *dns.Msg {
	q := new(dns.Msg).SetQuestion(name, qtype)
	if edns {
		q.SetEdns0(1232, do)
	}
	return q
}

// resolve sends q through r, failing the test on an error.
func resolve(t testing.TB, r resolver.Resolver, q *dns.Msg) *dns.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	m, err := resolver.ResolveMsg(ctx, r, q)
	if err != nil {
		t.Fatalf("Resolve(%s): %v", q.Question[0].String(), err)
	}
	return m
}

// ttls returns the TTL of every record in m but its OPT.
func ttlsOf(m *dns.Msg) []uint32 {
	var out []uint32
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			if rr.Header().Rrtype != dns.TypeOPT {
				out = append(out, rr.Header().Ttl)
			}
		}
	}
	return out
}

// waitFor polls cond until it holds: readiness by observation, never a
// guessed sleep.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// request is the query the cache sends for k, as a flight's run builds
// it.
func (k *key) request() *resolver.Request { return new(ownQuery).fill(k) }
