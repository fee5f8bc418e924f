package upstream

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// The tests of h2*_test.go hold the DoH client to HTTP/2's rules (RFC
// 9113) and RFC 8484's against dottest's H2RawServer, which frames its
// answers every way HTTP/2 allows, plays faults, and records each rule
// the client breaks. They use only Upstream's public behaviour, so that
// they hold for any HTTP/2 client the carrier is built on.

// startH2Raw starts an H2RawServer with a certificate from ca for
// testTLSName, answering q<i>.test with indexAddr(i) unless opts has a
// handler.
func startH2Raw(t *testing.T, ca *dottest.CA, opts dottest.H2RawOptions) *dottest.H2RawServer {
	t.Helper()
	opts.Cert = ca.Leaf(t, testTLSName)
	if opts.Handler == nil {
		opts.Handler = answerByIndex()
	}
	return dottest.StartH2Raw(t, opts)
}

// newH2Upstream builds an HTTPS Upstream for srv trusting ca, with opts'
// other fields as given.
func newH2Upstream(t *testing.T, ca *dottest.CA, srv *dottest.H2RawServer, opts Options) *Upstream {
	t.Helper()
	opts.Transport = HTTPS
	return newUpstreamAt(t, ca, srv.Addr(), opts)
}

// exchangeAll sends queries first..first+n-1 (q<i>.test), at most par at
// once, within ctx, and returns each one's error; an answer that is not
// indexAddr(i) is an error too.
func exchangeAll(ctx context.Context, u *Upstream, first, n, par int) []error {
	errs := make([]error, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = exchangeIndex(ctx, u, first+i)
		})
	}
	wg.Wait()
	return errs
}

// exchangeIndex asks u for q<i>.test and checks the answer is
// indexAddr(i), with the query's own ID.
func exchangeIndex(ctx context.Context, u *Upstream, i int) error {
	q := query(indexName(i), dns.TypeA)
	q.Id = uint16(i*7 + 1)
	r, err := u.Exchange(ctx, q)
	if err != nil {
		return err
	}
	return checkIndexAnswer(r, q, i)
}

// checkIndexAnswer returns what is wrong with r as the answer to q, query
// i.
func checkIndexAnswer(r, q *dns.Msg, i int) error {
	if r.Id != q.Id {
		return fmt.Errorf("answer ID %d, want %d", r.Id, q.Id)
	}
	if len(r.Answer) != 1 {
		return fmt.Errorf("answer to %s with %d records", indexName(i), len(r.Answer))
	}
	if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != indexAddr(i).String() {
		return fmt.Errorf("answer to %s: %v", indexName(i), r.Answer[0])
	}
	return nil
}

// warmUp sends one query (q1000.test) and waits for the client's ACK of
// the server's first SETTINGS, so that the queries after it meet
// settings the client has applied.
func warmUp(t *testing.T, u *Upstream, srv *dottest.H2RawServer) {
	t.Helper()
	wantAllAnswered(t, exchangeAll(ctxFor(t, testTimeout), u, 1000, 1, 1))
	waitFor(t, "the SETTINGS ACK", func() bool { return srv.SettingsAcks() >= 1 })
}

// wantAllAnswered fails the test for every query that failed.
func wantAllAnswered(t *testing.T, errs []error) {
	t.Helper()
	failed := 0
	for i, err := range errs {
		if err != nil {
			if failed < 5 {
				t.Errorf("query %d: %v", i, err)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d queries failed", failed, len(errs))
	}
}

// wantNoViolations fails the test for every HTTP/2 or RFC 8484 rule the
// client broke.
func wantNoViolations(t *testing.T, srv *dottest.H2RawServer) {
	t.Helper()
	for _, v := range srv.Violations() {
		t.Errorf("client broke a rule: %s", v)
	}
}

// TestH2WireShapes: every way HTTP/2 lets a server frame an answer
// (headers cut into CONTINUATION frames, bodies into many DATA frames,
// padding, trailers, a 103 first, more header fields, answers out of
// order) and every setting it may announce (a 10-octet window, one
// stream at a time, larger frames, no HPACK table) gets every query
// answered, by a client that keeps the rules. Settings are met on a
// connection that has applied them (warm) and on new connections, where
// queries are under way as the client reads them (cold): the cold rows
// catch a client that takes a stream's slot or a DATA frame's window
// before applying a SETTINGS that lowers them and sends the frame after
// its ACK, beyond the new limit (net/http's client did).
func TestH2WireShapes(t *testing.T) {
	const queries, par = 40, 8
	window10 := []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 10}}
	oneStream := []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 1}}
	tests := []struct {
		name     string
		settings []http2.Setting
		behavior dottest.H2RawBehavior
		warm     bool // one connection, its SETTINGS ACKed before the queries
	}{
		{name: "plain"},
		{name: "headers in 1-octet CONTINUATION frames", behavior: dottest.H2RawBehavior{HeaderChunk: 1}},
		{name: "body in 1-octet DATA frames", behavior: dottest.H2RawBehavior{DataChunk: 1}},
		{name: "padding", behavior: dottest.H2RawBehavior{Padding: 255, DataChunk: 20}},
		{name: "trailers", behavior: dottest.H2RawBehavior{Trailers: true}},
		{name: "empty DATA ends the stream", behavior: dottest.H2RawBehavior{EmptyEnd: true}},
		{name: "103 first", behavior: dottest.H2RawBehavior{Informational: true}},
		{name: "more header fields", behavior: dottest.H2RawBehavior{ContentLength: true, ExtraFields: []hpack.HeaderField{
			{Name: "cache-control", Value: "max-age=300"}, {Name: "server", Value: "h2raw"},
			{Name: "set-cookie", Value: "track=me"}, {Name: "alt-svc", Value: `h3=":443"; ma=86400`},
		}}},
		{name: "answers newest first", behavior: dottest.H2RawBehavior{Reverse: 4}},
		{name: "all at once", behavior: dottest.H2RawBehavior{HeaderChunk: 3, DataChunk: 7, Padding: 9,
			Trailers: true, Informational: true, ContentLength: true, Reverse: 3}},
		{name: "10-octet window, warm", settings: window10, warm: true},
		{name: "10-octet window, cold", settings: window10},
		{name: "one stream at a time, warm", settings: oneStream, warm: true},
		{name: "one stream at a time, cold", settings: oneStream},
		{name: "largest frames", behavior: dottest.H2RawBehavior{DataChunk: 1 << 20},
			settings: []http2.Setting{{ID: http2.SettingMaxFrameSize, Val: 1<<24 - 1}}},
		{name: "no HPACK table", behavior: dottest.H2RawBehavior{HeaderChunk: 2},
			settings: []http2.Setting{{ID: http2.SettingHeaderTableSize, Val: 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startH2Raw(t, ca, dottest.H2RawOptions{Settings: tt.settings, Behavior: tt.behavior})
			opts, want := Options{}, int64(queries)
			if tt.warm {
				opts.MaxConns = 1
				want++
			}
			u := newH2Upstream(t, ca, srv, opts)
			if tt.warm {
				warmUp(t, u, srv)
			}
			wantAllAnswered(t, exchangeAll(ctxFor(t, testTimeout), u, 0, queries, par))
			wantNoViolations(t, srv)
			if n := srv.Answered(); n != want {
				t.Errorf("server answered %d requests, want %d", n, want)
			}
			if tt.behavior.Reverse > 1 && srv.Reordered() == 0 {
				t.Error("no answer overtook another: the test tested nothing")
			}
		})
	}
}

// TestH2WireSettingsChange: a server that changes its settings in the
// middle of a connection (shrinking the window to 10 octets, allowing one
// stream, dropping the HPACK table, then growing them back) is obeyed
// from the ACK on, and every query is answered.
func TestH2WireSettingsChange(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startH2Raw(t, ca, dottest.H2RawOptions{})
	u := newH2Upstream(t, ca, srv, Options{MaxConns: 1})
	ctx := ctxFor(t, testTimeout)
	wantAllAnswered(t, exchangeAll(ctx, u, 0, 10, 4))

	steps := [][]http2.Setting{
		{{ID: http2.SettingInitialWindowSize, Val: 10}, {ID: http2.SettingMaxConcurrentStreams, Val: 1},
			{ID: http2.SettingHeaderTableSize, Val: 0}},
		{{ID: http2.SettingInitialWindowSize, Val: 1 << 20}, {ID: http2.SettingMaxConcurrentStreams, Val: 100},
			{ID: http2.SettingHeaderTableSize, Val: 4096}},
	}
	for i, settings := range steps {
		acks := srv.SettingsAcks()
		srv.UpdateSettings(settings...)
		waitFor(t, "the new SETTINGS' ACK", func() bool { return srv.SettingsAcks() > acks })
		wantAllAnswered(t, exchangeAll(ctx, u, 100*(i+1), 20, 8))
	}
	wantNoViolations(t, srv)
	if n := srv.Accepts(); n != 1 {
		t.Errorf("%d connections, want 1: new settings are no reason to leave", n)
	}
}

// TestH2WireWindowWithheld: when the server's window (10 octets a
// stream) is used up and it withholds WINDOW_UPDATE, queries wait, sending
// nothing beyond it; once it grants, every one gets through.
func TestH2WireWindowWithheld(t *testing.T) {
	const waiting = 5
	ca := dottest.NewCA(t)
	srv := startH2Raw(t, ca, dottest.H2RawOptions{Settings: []http2.Setting{{ID: http2.SettingInitialWindowSize, Val: 10}}})
	u := newH2Upstream(t, ca, srv, Options{MaxConns: 1})
	ctx := ctxFor(t, testTimeout)
	// Before it ACKs the 10-octet window the client may use HTTP/2's
	// default.
	warmUp(t, u, srv)

	srv.WithholdWindow(true)
	done := make(chan []error, 1)
	go func() { done <- exchangeAll(ctx, u, 1, waiting, waiting) }()
	waitFor(t, "queries waiting for window", func() bool { return srv.Waiting() == waiting })
	select {
	case errs := <-done:
		t.Fatalf("queries ended while the server withheld its window: %v", errs)
	default:
	}
	srv.WithholdWindow(false)
	wantAllAnswered(t, <-done)
	wantNoViolations(t, srv)
}

// TestH2WireOneStream: a server that allows one stream at a time, and
// holds each a while, gets 20 queries at once one after another on each
// connection (never two open on one once the client has applied the
// setting), and answers them all.
func TestH2WireOneStream(t *testing.T) {
	const queries = 20
	tests := []struct {
		name     string
		maxConns int
		warm     bool
	}{
		{name: "one connection, warm", maxConns: 1, warm: true},
		{name: "one connection, cold", maxConns: 1},
		{name: "two connections, cold", maxConns: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startH2Raw(t, ca, dottest.H2RawOptions{
				Handler:  dottest.Delay(2*time.Millisecond, answerByIndex()),
				Settings: []http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 1}},
			})
			u := newH2Upstream(t, ca, srv, Options{MaxConns: tt.maxConns})
			want := int64(queries)
			if tt.warm {
				warmUp(t, u, srv)
				want++
			}
			wantAllAnswered(t, exchangeAll(ctxFor(t, testTimeout), u, 0, queries, queries))
			wantNoViolations(t, srv)
			if n := srv.PeakStreams(); tt.warm && n != 1 {
				t.Errorf("%d streams open at once on the connection, want 1", n)
			}
			if n := srv.Accepts(); n > int64(tt.maxConns) {
				t.Errorf("%d connections, want %d at most", n, tt.maxConns)
			}
			if n := srv.Answered(); n != want {
				t.Errorf("server answered %d requests, want %d", n, want)
			}
		})
	}
}
