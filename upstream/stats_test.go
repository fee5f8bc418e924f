package upstream

import (
	"cmp"
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/resolver"
)

// silentAttempt bounds an attempt that cannot succeed and is expected to
// end in a timeout: any value works, a short one keeps the test quick.
const silentAttempt = 300 * time.Millisecond

// TestStatsErrorKinds: each way an exchange can end is counted once, as
// its kind, and Queries = Answers + non-answer Errors + Abandoned.
func TestStatsErrorKinds(t *testing.T) {
	type setup func(t *testing.T, ca *dottest.CA) (netip.AddrPort, Options)
	dot := func(h dottest.Handler) setup {
		return func(t *testing.T, ca *dottest.CA) (netip.AddrPort, Options) {
			return startServer(t, ca, h).Addr(), Options{}
		}
	}
	withCert := func(cert func(t *testing.T, ca *dottest.CA) tls.Certificate, opts Options, maxTLS uint16) setup {
		return func(t *testing.T, ca *dottest.CA) (netip.AddrPort, Options) {
			return dottest.Start(t, dottest.Options{Cert: cert(t, ca), MaxVersion: maxTLS}).Addr(), opts
		}
	}
	leaf := func(t *testing.T, ca *dottest.CA) tls.Certificate { return ca.Leaf(t, testTLSName) }
	otherPin := func() Options {
		return Options{SPKIPins: [][]byte{make([]byte, 32)}}
	}
	tests := []struct {
		name      string
		start     setup
		timeout   time.Duration // the attempt's; testTimeout when 0
		cancel    bool          // the caller gives up instead
		wantKind  ErrorKind     // -1: no error
		answered  bool
		abandoned bool
	}{
		{name: "answered", start: dot(nil), wantKind: -1, answered: true},
		{name: "SERVFAIL", start: dot(dottest.Rcode(dns.RcodeServerFailure)), wantKind: ErrorServFail, answered: true},
		{name: "REFUSED", start: dot(dottest.Rcode(dns.RcodeRefused)), wantKind: ErrorRefused, answered: true},
		{name: "connection refused", start: func(t *testing.T, ca *dottest.CA) (netip.AddrPort, Options) {
			srv := startServer(t, ca, nil)
			srv.Kill()
			return srv.Addr(), Options{}
		}, wantKind: ErrorConnection},
		{name: "closed during handshake", start: rawTCP(func(c net.Conn) { c.Close() }), wantKind: ErrorConnection},
		{name: "silent after the handshake", start: dot(dottest.Silent()), timeout: silentAttempt, wantKind: ErrorTimeout},
		{name: "silent during the handshake", start: rawTCP(nil), timeout: silentAttempt, wantKind: ErrorTimeout},
		{name: "self-signed certificate", start: withCert(func(t *testing.T, _ *dottest.CA) tls.Certificate {
			return dottest.SelfSigned(t, testTLSName)
		}, Options{}, 0), wantKind: ErrorTLS},
		{name: "certificate for another name", start: withCert(func(t *testing.T, ca *dottest.CA) tls.Certificate {
			return ca.Leaf(t, "other.test")
		}, Options{}, 0), wantKind: ErrorTLS},
		{name: "pin mismatch", start: withCert(leaf, otherPin(), 0), wantKind: ErrorTLS},
		{name: "TLS 1.1 only", start: withCert(leaf, Options{}, tls.VersionTLS11), wantKind: ErrorTLS},
		{name: "answer does not parse", start: func(t *testing.T, ca *dottest.CA) (netip.AddrPort, Options) {
			srv := startRawServer(t, ca.Leaf(t, testTLSName))
			// A question whose name is a compression pointer to itself.
			srv.next.Store(&rawAnswer{wire: []byte{0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, matchID: true})
			return srv.addr, Options{}
		}, wantKind: ErrorBadAnswer},
		{name: "caller gives up", start: dot(dottest.Silent()), cancel: true, wantKind: -1, abandoned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			addr, opts := tt.start(t, ca)
			opts.Name, opts.Addr, opts.TLSName, opts.RootCAs = "u", addr, testTLSName, ca.Pool
			u, err := New(opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(u.Close)

			ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(tt.timeout, testTimeout))
			defer cancel()
			if tt.cancel {
				// Cancelled once the query is out; the silent server
				// never answers it.
				go func() {
					waitFor(t, "the query to be sent", func() bool { return u.OpenConns() == 1 })
					cancel()
				}()
			}
			_, err = u.Exchange(ctx, query("www.example.", dns.TypeA))
			st := u.Stats()
			t.Logf("err: %v; stats: %+v", err, st)

			var want ErrorCounts
			if tt.wantKind >= 0 {
				want[tt.wantKind] = 1
			}
			if st.Errors != want {
				t.Errorf("errors %v, want %v", st.Errors, want)
			}
			if st.Queries != 1 || (st.Answers == 1) != tt.answered || (st.Abandoned == 1) != tt.abandoned {
				t.Errorf("queries %d answers %d abandoned %d; want 1, answered %v, abandoned %v",
					st.Queries, st.Answers, st.Abandoned, tt.answered, tt.abandoned)
			}
			if got := st.Answers + st.Errors.Total() - st.Errors[ErrorServFail] - st.Errors[ErrorRefused] + st.Abandoned; got != st.Queries {
				t.Errorf("answers, failures and abandoned add up to %d, not %d queries", got, st.Queries)
			}
			if st.RTT.Count() != st.Answers || (st.Answers > 0 && st.RTT.Sum <= 0) {
				t.Errorf("RTT histogram %+v for %d answers", st.RTT, st.Answers)
			}
			failed := tt.wantKind >= 0 && !tt.answered
			if (st.LastError != "") != failed || st.LastErrorAt.IsZero() == failed {
				t.Errorf("last error %q at %v; want one: %v", st.LastError, st.LastErrorAt, failed)
			}
			if st.Name != "u" || st.Address != addr.String() || st.TLSName != testTLSName || !st.Healthy {
				t.Errorf("identity %q %q %q healthy %v", st.Name, st.Address, st.TLSName, st.Healthy)
			}
		})
	}
}

// rawTCP starts a plain TCP server on loopback that hands every
// connection to serve (nil: hold it open and say nothing), and returns
// its address; a DoT client's handshake meets whatever serve does.
func rawTCP(serve func(net.Conn)) func(*testing.T, *dottest.CA) (netip.AddrPort, Options) {
	return func(t *testing.T, _ *dottest.CA) (netip.AddrPort, Options) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dottest.Serve(t, ln, serve)
		return ln.Addr().(*net.TCPAddr).AddrPort(), Options{}
	}
}

func TestRTTHistogram(t *testing.T) {
	p := &pool{tlsConf: &tls.Config{}}
	u := &Upstream{ep: &endpoint{fixed: netip.MustParseAddrPort("127.0.0.1:853")}, carrier: p, sender: p}
	for _, d := range []time.Duration{0, 500 * time.Microsecond, 501 * time.Microsecond, 30 * time.Millisecond, time.Minute} {
		u.counters.observeRTT(d)
	}
	h := u.Stats().RTT
	if len(h.Counts) != len(h.Bounds)+1 || h.Count() != 5 {
		t.Fatalf("histogram %+v", h)
	}
	want := map[int]uint64{0: 2, 1: 1, 6: 1, len(h.Bounds): 1} // 0.5ms (twice), 1ms, 50ms, +Inf
	for i, n := range h.Counts {
		if n != want[i] {
			t.Errorf("bucket %d (≤ %v): %d, want %d", i, bound(h, i), n, want[i])
		}
	}
	if h.Sum != 1001*time.Microsecond+30*time.Millisecond+time.Minute {
		t.Errorf("sum %v", h.Sum)
	}
}

func bound(h RTTHistogram, i int) any {
	if i < len(h.Bounds) {
		return h.Bounds[i]
	}
	return "+Inf"
}

// TestSelectorFailovers: the selector counts a failover against the
// upstream it moves away from, for a failure and for a hedge, and
// records in the query's Info the upstream whose answer it returns.
func TestSelectorFailovers(t *testing.T) {
	tests := []struct {
		name          string
		first, second dottest.Handler
		hedge         bool // hedge after the default delay; else never
		wantFailovers [2]uint64
		wantFrom      int // index of the upstream Info names
	}{
		{"first answers", nil, nil, false, [2]uint64{0, 0}, 0},
		{"first SERVFAIL", dottest.Rcode(dns.RcodeServerFailure), nil, false, [2]uint64{1, 0}, 1},
		{"first silent: hedged", dottest.Silent(), nil, true, [2]uint64{1, 0}, 1},
		// Nothing to move on to from the last: its SERVFAIL is returned.
		{"both SERVFAIL", dottest.Rcode(dns.RcodeServerFailure), dottest.Rcode(dns.RcodeServerFailure), false, [2]uint64{1, 0}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			ups := []*Upstream{
				newUpstream(t, ca, startServer(t, ca, tt.first), Options{Name: "first"}),
				newUpstream(t, ca, startServer(t, ca, tt.second), Options{Name: "second"}),
			}
			opts := SelectorOptions{Policy: ordered{}, AttemptTimeout: longAttempt}
			if !tt.hedge {
				// No hedge, however slow a loaded machine makes the
				// first answer.
				opts.HedgeDelay = longAttempt
			}
			s := newSelector(t, opts, ups...)
			req := resolver.NewRequest(query("www.example.", dns.TypeA))
			info := &req.Info
			if _, err := s.Resolve(ctxFor(t, testTimeout), req); err != nil {
				t.Fatal(err)
			}
			for i, u := range ups {
				if got := u.Stats().Failovers; got != tt.wantFailovers[i] {
					t.Errorf("%s: %d failovers, want %d", u.Name(), got, tt.wantFailovers[i])
				}
			}
			if info.Upstream != ups[tt.wantFrom].Name() {
				t.Errorf("Info names %q, want %q", info.Upstream, ups[tt.wantFrom].Name())
			}
		})
	}
}

// TestInfoUnderHedging runs many queries at once, half of them hedged
// away from a silent first upstream and several sharing one upstream
// query: each caller's Info names the upstream whose answer it got, and
// the race detector sees no attempt write to a caller's Info.
func TestInfoUnderHedging(t *testing.T) {
	const queries = 200
	ca := dottest.NewCA(t)
	firstAddr, secondAddr := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	// The first answers even-numbered queries and ignores the others.
	first := startServer(t, ca, func(q *dns.Msg, reply func(*dns.Msg)) {
		if indexOf(q.Question[0].Name)%2 == 0 {
			reply(dottest.AnswerMsg(q, firstAddr))
		}
	})
	second := startServer(t, ca, dottest.Answer(secondAddr.String()))
	ups := []*Upstream{
		newUpstream(t, ca, first, Options{Name: "first"}),
		newUpstream(t, ca, second, Options{Name: "second"}),
	}
	s := newSelector(t, SelectorOptions{Policy: ordered{}, AttemptTimeout: longAttempt}, ups...)
	byAddr := map[netip.Addr]string{firstAddr: "first", secondAddr: "second"}

	var wg sync.WaitGroup
	for i := range queries {
		wg.Go(func() {
			// Pairs of callers ask the same name: one upstream query each.
			req := resolver.NewRequest(query(indexName(i/2), dns.TypeA))
			info := &req.Info
			resp, err := s.Resolve(ctxFor(t, testTimeout), req)
			r := resp.Msg
			if err != nil {
				t.Errorf("query %d: %v", i, err)
				return
			}
			if want := byAddr[addrOf(t, r)]; info.Upstream != want {
				t.Errorf("query %d: Info names %q, the answer came from %q", i, info.Upstream, want)
			}
		})
	}
	wg.Wait()
}
