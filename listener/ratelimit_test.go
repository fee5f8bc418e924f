package listener

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/ratelimit"
	"github.com/dotproxy/dotproxy/resolver"
)

// TestUDPSizeCapInline: the cap on UDP answers is the Request's Limit,
// set before the chain is asked, so that a wire answer made at once (a
// cache hit, which is copied only when it fits) honours it as well.
func TestUDPSizeCapInline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tr      resolver.Transport
		udpSize uint16
		maxUDP  int
		want    int
	}{
		{"EDNS 4096, default cap", resolver.UDP, 4096, 0, DefaultMaxUDPSize},
		{"EDNS 65535, cap 4096", resolver.UDP, 65535, 4096, 4096},
		{"EDNS 1000 under the cap", resolver.UDP, 1000, 0, 1000},
		{"no EDNS", resolver.UDP, 0, 0, dns.MinMsgSize},
		{"cap 512", resolver.UDP, 1232, 512, 512},
		{"TCP is not capped", resolver.TCP, 4096, 512, dns.MaxMsgSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var limit int
			s, err := New(Options{Addrs: []netip.AddrPort{loopback}, MaxUDPSize: tc.maxUDP,
				Resolver: resolver.Func(func(_ context.Context, req *resolver.Request) (resolver.Response, error) {
					limit = req.Limit
					return resolver.Response{Msg: answerA(req.Msg(), 1)}, nil
				})})
			if err != nil {
				t.Fatal(err)
			}
			// Both parsers: a plain query and one that is unpacked.
			plain := packQuery(t, 1, "example.com.", dns.TypeA, tc.udpSize)
			m := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
			m.Opcode, m.Zero = dns.OpcodeQuery, true // Z set: not plain
			if tc.udpSize > 0 {
				m.SetEdns0(tc.udpSize, false)
			}
			for _, raw := range [][]byte{plain, mustPack(t, m)} {
				limit = 0
				answerOnce(s, raw, netip.MustParseAddrPort("127.0.0.1:5353"), tc.tr)
				if limit != tc.want {
					t.Errorf("Request.Limit %d, want %d", limit, tc.want)
				}
			}
		})
	}
}

// TestRateLimit: over UDP, once a prefix's burst is spent, its answers
// are dropped or slip out as a bare truncated header and question, and
// are counted; whether made at once or in a worker. TCP is never
// limited.
func TestRateLimit(t *testing.T) {
	const burst, queries = 2, 10
	for _, tc := range []struct {
		name     string
		resolver resolver.Resolver
	}{
		{"inline", &wireEcho{}},
		{"worker", echo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1e9, 0) // a stopped clock: the bucket never refills
			lim, err := ratelimit.New(ratelimit.Options{ResponsesPerSecond: 1, Burst: burst, Slip: 2,
				Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			s, _ := startServer(t, Options{Resolver: tc.resolver, RateLimiter: lim})
			cs := clients(t, s)

			query := packQuery(t, 5, "example.com.", dns.TypeA, 1232)
			u := cs["udp"]
			for range queries {
				u.send(t, query)
			}
			// Drops send nothing: wait for the counters, then for the
			// answers and slips they promise.
			deadline := time.Now().Add(ioTimeout)
			for {
				d, sl := s.RateLimited()
				if d+sl == queries-burst {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("rate limited %d+%d answers, want %d", d, sl, queries-burst)
				}
				time.Sleep(time.Millisecond)
			}
			dropped, slipped := s.RateLimited()
			if slipped == 0 || dropped == 0 {
				t.Errorf("dropped %d, slipped %d; want some of each with slip 2", dropped, slipped)
			}
			full := 0
			for range burst + int(slipped) {
				m, size := u.recv(t)
				if m.Id != 5 || len(m.Question) != 1 || m.Question[0].Name != "example.com." {
					t.Fatalf("reply %v does not echo the query", m)
				}
				if !m.Truncated {
					full++
					continue
				}
				if m.Rcode != dns.RcodeSuccess || len(m.Answer)+len(m.Ns)+len(m.Extra) != 0 || size > len(query) {
					t.Errorf("slip is %d bytes (query %d): %v", size, len(query), m)
				}
			}
			if full != burst {
				t.Errorf("%d full answers, want the burst, %d", full, burst)
			}

			c := cs["tcp"]
			for range queries {
				c.send(t, query)
			}
			for range queries {
				if m, _ := c.recv(t); m.Truncated || len(m.Answer) != 1 {
					t.Fatalf("TCP answer limited: %v", m)
				}
			}
		})
	}
}
