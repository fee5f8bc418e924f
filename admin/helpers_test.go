package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeProxy stands in for the proxy: the figures a Status func reports
// and the answer of a Ready func, both changed by the test while the
// server reads them.
type fakeProxy struct {
	mu    sync.Mutex
	st    Status
	ready error
}

// Status returns a copy, so the test may go on changing its own.
func (f *fakeProxy) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.st
	st.Upstreams = slices.Clone(f.st.Upstreams)
	st.Clients = slices.Clone(f.st.Clients)
	if f.st.Cache != nil {
		c := *f.st.Cache
		st.Cache = &c
	}
	if f.st.Filter != nil {
		fl := *f.st.Filter
		st.Filter = &fl
	}
	return st
}

// Ready is the Options.Ready func.
func (f *fakeProxy) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

// update changes the figures under the lock.
func (f *fakeProxy) update(change func(st *Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(&f.st)
}

// setReady sets what Ready returns.
func (f *fakeProxy) setReady(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = err
}

// startServer starts a Server on a free loopback port with opts (Addr
// filled in) and shuts it down when the test ends. It returns the base
// URL.
func startServer(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	opts.Addr = netip.MustParseAddrPort("127.0.0.1:0")
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s, "http://" + s.Addr().String()
}

// fetch does one request and returns the response with its body read.
func fetch(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, string(body)
}

// errNoUpstream is a reason Ready gives in tests.
var errNoUpstream = errors.New("no healthy upstream (cloudflare: down, quad9: down)")

// sampleStatus is a snapshot with every field set, times in UTC without
// a monotonic reading so that it survives a JSON round trip unchanged.
func sampleStatus() Status {
	started := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return Status{
		Version:   "1.2.3",
		StartedAt: started,
		Time:      started.Add(time.Hour),
		Queries:   3600,
		Upstreams: []UpstreamStatus{
			{
				Name: "cloudflare", Address: "1.1.1.1:853", Transport: "tls", TLSName: "cloudflare-dns.com",
				Healthy: true, SRTT: 12345 * time.Microsecond,
				Queries: 3000, Errors: 2, OpenConns: 2,
			},
			{
				Name: "quad9", Address: "9.9.9.9:443", Transport: "https", TLSName: "dns.quad9.net",
				Healthy: false, SRTT: 4560 * time.Microsecond,
				Queries: 1000, Errors: 17, OpenConns: 0,
				LastError:   "read tcp 192.0.2.1:40000->9.9.9.9:853: i/o timeout",
				LastErrorAt: started.Add(time.Hour - 3*time.Minute),
			},
		},
		Cache:  &CacheStatus{Hits: 900, Misses: 2700, Stale: 4, Entries: 1234},
		Filter: &FilterStatus{Blocked: 36, Rules: 150000},
		Forward: []ForwardStatus{{
			Domains: []string{"lan", "168.192.in-addr.arpa"},
			Servers: []UpstreamStatus{{Name: "router", Address: "192.168.1.1:53", Healthy: true,
				SRTT: 800 * time.Microsecond, Queries: 40}},
		}},
		Clients: []ClientStatus{
			{Address: "192.168.1.23", Name: "kids-tablet", Queries: 1800},
			{Address: "fd00::5", Queries: 36},
		},
	}
}
