package e2e

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// The load of TestAmplification: a forged-source flood, from one address
// the rate limiter does not exempt, asking for one name whose answer
// fills most of max_udp_size, with the largest EDNS buffer.
const (
	ampSource   = "127.0.0.31"
	ampTick     = 10 * time.Millisecond
	ampDuration = 3 * time.Second
	// ampSteady is when the first burst is long spent: what is sent
	// after it measures the limited rate.
	ampSteady = time.Second
	// ampDrain bounds the wait for the last answers once the flood ends.
	ampDrain = 500 * time.Millisecond
)

// almostFullTXT answers with about 1,100 octets of TXT: under
// max_udp_size (1232), so it goes out whole when not limited.
func almostFullTXT(q *dns.Msg, reply func(*dns.Msg)) {
	m := new(dns.Msg).SetReply(q)
	chunk := strings.Repeat("a", 255)
	m.Answer = append(m.Answer, &dns.TXT{
		Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 3600},
		Txt: []string{chunk, chunk, chunk, chunk},
	})
	reply(m)
}

// TestAmplification measures what a flood of queries from one forged
// source makes dotproxy send that source (the victim), with max_udp_size
// and rate_limit at their defaults but enabled for every client: octets
// out over octets in, for the whole run and after the first burst. At a
// flood's rate that must not exceed 1; at a slower one, whose queries
// the limit's steady rate answers a good part of, it is only reported.
func TestAmplification(t *testing.T) {
	for _, tc := range []struct {
		name    string
		perTick int // queries every ampTick
		bound   bool
	}{
		{"5000 per second", 50, true},
		{"500 per second", 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) { testAmplification(t, tc.perTick, tc.bound) })
	}
}

func testAmplification(t *testing.T, perTick int, bound bool) {
	p := newPKI(t)
	up := dottest.Start(t, dottest.Options{Cert: p.leafCert(t), Addr: "127.0.0.30:0", Handler: almostFullTXT})
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{{name: "up", addr: up.Addr(), caFile: p.caFile}},
		bin:       plainBin(t), logLevel: "info", cache: true,
		extra: "health: {interval: 1h, down_interval: 1h}\nrate_limit: {enabled: true, exempt: []}\n",
	})
	q := new(dns.Msg).SetQuestion("amp.test.", dns.TypeTXT)
	q.SetEdns0(dns.DefaultMsgSize, false) // 4096: what an amplifier is asked for
	raw, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	// Into the cache first, so that the flood is answered at once, as
	// a real one would be. (It spends one answer of the source's burst:
	// on loopback every client shares its /24.)
	if r, _, err := (&dns.Client{Timeout: clientTimeout}).Exchange(q, d.addr.String()); err != nil || len(r.Answer) != 1 {
		t.Fatalf("priming the cache: %v, %v", r, err)
	}

	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ampSource)}, net.UDPAddrFromAddrPort(d.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	var outAll, outSteady, answers, slips atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return // the deadline after the flood
			}
			outAll.Add(int64(n))
			if time.Since(start) >= ampSteady {
				outSteady.Add(int64(n))
			}
			if buf[2]&0x02 != 0 {
				slips.Add(1)
			} else {
				answers.Add(1)
			}
		}
	}()
	var inAll, inSteady, sent int64
	tick := time.NewTicker(ampTick)
	defer tick.Stop()
	for time.Since(start) < ampDuration {
		<-tick.C
		for range perTick {
			if _, err := c.Write(raw); err != nil {
				continue // the socket buffer was full: not sent, not counted
			}
			sent++
			inAll += int64(len(raw))
			if time.Since(start) >= ampSteady {
				inSteady += int64(len(raw))
			}
		}
	}
	c.SetReadDeadline(time.Now().Add(ampDrain))
	<-done

	whole := float64(outAll.Load()) / float64(inAll)
	steady := float64(outSteady.Load()) / float64(inSteady)
	t.Logf("%d queries of %d octets in %v from one source: %d answers, %d slips; %d octets out; amplification %.2fx overall, %.2fx after the first %v",
		sent, len(raw), ampDuration, answers.Load(), slips.Load(), outAll.Load(), whole, steady, ampSteady)
	if bound && steady > 1 {
		t.Errorf("amplification %.2fx after the first burst, want at most 1", steady)
	}
	if answers.Load() == 0 {
		t.Error("no answer at all: the flood tested nothing")
	}
}
