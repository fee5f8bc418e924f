package upstream

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/resolver"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// testTLSName is the name every test server's certificate is issued for.
const testTLSName = "dns.test"

// testTimeout bounds a query that is expected to succeed: far longer than
// any of them takes, so that a noisy machine does not fail the test, while
// a hang still ends.
const testTimeout = 10 * time.Second

// startServer starts a DoT server with a certificate from ca for
// testTLSName.
func startServer(t *testing.T, ca *dottest.CA, h dottest.Handler) *dottest.Server {
	t.Helper()
	return dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, testTLSName), Handler: h})
}

// newUpstream builds an Upstream for srv trusting ca, with opts' other
// fields as given.
func newUpstream(t *testing.T, ca *dottest.CA, srv *dottest.Server, opts Options) *Upstream {
	t.Helper()
	return newUpstreamAt(t, ca, srv.Addr(), opts)
}

// newUpstreamAt builds an Upstream of opts.Transport for the test server
// at addr, trusting ca, named after addr and checked for testTLSName
// unless opts says otherwise; it is closed at cleanup.
func newUpstreamAt(t *testing.T, ca *dottest.CA, addr netip.AddrPort, opts Options) *Upstream {
	t.Helper()
	if opts.Name == "" {
		opts.Name = addr.String()
	}
	opts.Addr = addr
	if opts.TLSName == "" {
		opts.TLSName = testTLSName
	}
	if opts.RootCAs == nil {
		opts.RootCAs = ca.Pool
	}
	u, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	return u
}

func newSelector(t *testing.T, opts SelectorOptions, ups ...*Upstream) *Selector {
	t.Helper()
	s, err := NewSelector(opts, members(ups)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func query(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	return q
}

// members returns ups as the selector holds them.
func members(ups []*Upstream) []Member {
	ms := make([]Member, len(ups))
	for i, u := range ups {
		ms[i] = u
	}
	return ms
}

// resolve asks s for q as a query of dotproxy's own, and returns the
// answer as a message.
func resolve(s *Selector, ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	resp, err := s.Resolve(ctx, resolver.NewRequest(q))
	return resp.Msg, err
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// indexName is the name of query i in tests that tell queries apart:
// q<i>.test.
func indexName(i int) string { return fmt.Sprintf("q%d.test.", i) }

// indexOf parses the i out of indexName(i), or -1.
func indexOf(name string) int {
	s, ok := strings.CutPrefix(strings.ToLower(name), "q")
	if !ok {
		return -1
	}
	s, ok = strings.CutSuffix(s, ".test.")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return i
}

// indexAddr is the address the answer to query i holds: 10.x.y.z
// encoding i, so that a caller can tell its answer from another's.
func indexAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// answerByIndex answers q<i>.test with indexAddr(i).
func answerByIndex() dottest.Handler {
	return func(q *dns.Msg, reply func(*dns.Msg)) {
		reply(dottest.AnswerMsg(q, indexAddr(indexOf(q.Question[0].Name))))
	}
}

// addrOf returns the address in r's first A record.
func addrOf(t *testing.T, r *dns.Msg) netip.Addr {
	t.Helper()
	if r == nil || len(r.Answer) == 0 {
		t.Fatalf("no answer record in %v", r)
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok {
		t.Fatalf("answer %v is not an A record", r.Answer[0])
	}
	addr, _ := netip.AddrFromSlice(a.A.To4())
	return addr
}

// waitFor polls cond until it holds, failing the test after testTimeout:
// readiness by observation, not by sleeping a guessed time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
