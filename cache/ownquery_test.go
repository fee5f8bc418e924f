package cache

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/dotproxy/dotproxy/upstream"
)

// holdingMember is a selector member that reads the query it was given
// once more after its attempt's context has ended: the latest an attempt
// could still touch it. With hold it never answers; otherwise it answers
// at once.
type holdingMember struct {
	name       string
	hold       bool
	entered    atomic.Int64
	returned   atomic.Int64
	mismatched atomic.Int64 // queries that changed under the attempt
}

func (m *holdingMember) Name() string { return m.name }
func (m *holdingMember) FailedOver()  {}
func (m *holdingMember) Standing(time.Time) upstream.Standing {
	return upstream.Standing{Healthy: true}
}

func (m *holdingMember) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	m.entered.Add(1)
	defer m.returned.Add(1)
	name, do := q.Question[0].Name, q.IsEdns0().Do()
	if !m.hold {
		r := new(dns.Msg).SetReply(q)
		r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: net.IPv4(192, 0, 2, 1).To4()}}
		return r, nil
	}
	<-ctx.Done()
	// Read after the selector gave this attempt up: a pooled query
	// already refilled for another miss shows here (and to -race).
	if q.Question[0].Name != name || q.IsEdns0().Do() != do {
		m.mismatched.Add(1)
	}
	return nil, ctx.Err()
}

// TestOwnQueryOutlivesEveryAttempt: the cache gives its query back to
// ownQueries once the selector's Resolve returns, and the next miss fills
// it anew. Every attempt the selector made must have let go of it by
// then: a hedged attempt still running after the hedge answered, a first
// attempt that another member's explored copy beat, an exploration that
// outlives the query. Each miss is for a new name; an attempt that read
// the query after Resolve returned would see another miss's name, and
// -race would report the write.
func TestOwnQueryOutlivesEveryAttempt(t *testing.T) {
	const (
		workers = 4
		perWork = 30
	)
	for _, tc := range []struct {
		name     string
		policy   string
		slowLead bool // the holding member is first in order; else it is the explored one
	}{
		{"hedged attempt held past the answer", upstream.PolicyOrdered, true},
		{"first attempt beaten by an explored copy", upstream.PolicyFastest, true},
		{"explored copy held past the answer", upstream.PolicyFastest, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slow := &holdingMember{name: "slow", hold: true}
			fast := &holdingMember{name: "fast"}
			members := []upstream.Member{slow, fast}
			if !tc.slowLead {
				members = []upstream.Member{fast, slow}
			}
			r := hedgingCache(t, tc.policy, 300*time.Millisecond, members)
			resolveMany(t, r, "n", workers, perWork)
			// Explorations run on past their query: wait for them all.
			waitFor(t, "the held attempts to return", func() bool { return slow.returned.Load() == slow.entered.Load() })
			if slow.entered.Load() == 0 {
				t.Fatal("the holding member was never asked: the case tests nothing")
			}
			if n := slow.mismatched.Load(); n != 0 {
				t.Errorf("%d of %d held attempts saw their query change under them", n, slow.entered.Load())
			}
		})
	}
}

// TestOwnQueryOutlivesLateAnswers is TestOwnQueryOutlivesEveryAttempt
// over real DoT upstreams: the first in order answers each query only
// once the second has answered it, so that every miss is hedged, its
// first attempt (written from the query's goroutine into the pool's
// pooled buffer, or by Exchange while it dials) is given up on, and its
// late answer reaches a connection that no longer waits for it, while
// the next miss refills the cache's pooled query.
func TestOwnQueryOutlivesLateAnswers(t *testing.T) {
	const (
		workers = 4
		perWork = 8
	)
	var mu sync.Mutex
	answered := map[string]chan struct{}{} // by name, closed once the fast server answered it
	answeredCh := func(name string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		name = strings.ToLower(name)
		ch, ok := answered[name]
		if !ok {
			ch = make(chan struct{})
			answered[name] = ch
		}
		return ch
	}
	answer := func(q *dns.Msg) *dns.Msg {
		r := new(dns.Msg).SetReply(q)
		r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
			A: net.IPv4(192, 0, 2, 1).To4()}}
		return r
	}
	var late atomic.Int64 // answers the slow server sent after the fast one's
	ca := dottest.NewCA(t)
	slowSrv := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, "dns.test"), Handler: func(q *dns.Msg, reply func(*dns.Msg)) {
		select {
		case <-answeredCh(q.Question[0].Name):
			late.Add(1)
			reply(answer(q))
		case <-time.After(testTimeout):
		}
	}})
	fastSrv := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, "dns.test"), Handler: func(q *dns.Msg, reply func(*dns.Msg)) {
		reply(answer(q))
		ch := answeredCh(q.Question[0].Name)
		mu.Lock()
		select {
		case <-ch:
		default:
			close(ch)
		}
		mu.Unlock()
	}})
	var members []upstream.Member
	for _, srv := range []*dottest.Server{slowSrv, fastSrv} {
		u, err := upstream.New(upstream.Options{Name: srv.Addr().String(), Addr: srv.Addr(), TLSName: "dns.test",
			RootCAs: ca.Pool, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { u.Close() })
		members = append(members, u)
	}
	// The slow upstream's late answers, when they beat the hedge's to
	// the selector, are its RTT samples: its hedge delay (three of them)
	// grows with each, up to the attempt timeout; few misses, then. Ample
	// for the fast upstream's dial and answer on a loaded machine.
	r := hedgingCache(t, upstream.PolicyOrdered, 400*time.Millisecond, members)
	resolveMany(t, r, "late", workers, perWork)
	if late.Load() == 0 {
		t.Error("the slow upstream answered nothing late: no miss was hedged")
	}
}

// hedgingCache is a cache in front of a selector of members under the
// named policy that hedges after a millisecond and gives an attempt
// attemptTimeout.
func hedgingCache(t *testing.T, policyName string, attemptTimeout time.Duration, members []upstream.Member) resolver.Resolver {
	t.Helper()
	policy, err := upstream.NewPolicy(policyName)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := upstream.NewSelector(upstream.SelectorOptions{Policy: policy, HedgeDelay: time.Millisecond,
		AttemptTimeout: attemptTimeout, Logger: slog.New(slog.DiscardHandler)}, members...)
	if err != nil {
		t.Fatal(err)
	}
	_, r := newCache(t, Options{Size: 10_000}, sel)
	return r
}

// resolveMany asks r for perWork fresh names (prefix, worker, number) from
// each of workers goroutines at once, half of them with the DO bit, and
// fails t for every query not answered with its own name.
func resolveMany(t *testing.T, r resolver.Resolver, prefix string, workers, perWork int) {
	t.Helper()
	errs := make(chan error, workers*perWork)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWork {
				name := fmt.Sprintf("%s%d-%d.test.", prefix, w, i)
				ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
				m, err := resolver.ResolveMsg(ctx, r, query(name, dns.TypeA, true, i%2 == 0))
				cancel()
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: %w", name, err)
				case len(m.Answer) != 1 || !strings.EqualFold(m.Answer[0].Header().Name, name) ||
					!strings.EqualFold(m.Question[0].Name, name):
					errs <- fmt.Errorf("%s: answered %v", name, m)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
