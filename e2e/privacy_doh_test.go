package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// privacyDoHUpstream is the DoH upstream's address in the DoH privacy
// test, used by no other test, so that the capture holds only the traffic
// between dotproxy and that upstream.
const privacyDoHUpstream = "127.0.0.78"

// TestPrivacyOnlyDoHOnTheWire is TestPrivacyOnlyDoTOnTheWire for a DoH
// upstream, Unbound's: tcpdump captures loopback traffic to and from its
// address while queries go through dotproxy over UDP and TCP, while
// Unbound answers, while it is stopped (connections open, nothing
// answered), while it is gone and once it is back, when a proxy with a
// fallback to plain DNS, or to another port, would use it. Every packet
// must be on Unbound's HTTPS port. The padding and the client's EDNS
// options, which the encrypted wire hides here, are checked by upstream's
// tests against the in-process DoH server.
func TestPrivacyOnlyDoHOnTheWire(t *testing.T) {
	tcpdump := tool(t, "tcpdump", "tcpdump")
	ub := startUnboundDoH(t, newPKI(t), privacyDoHUpstream)
	capture := startCapture(t, tcpdump, privacyDoHUpstream)
	d := startDotproxy(t, proxyConfig{upstreams: []upstreamConf{ub.upstream("private")}, extra: privacyConfig})

	ask := func(phase string, wantRcode int) {
		t.Helper()
		for i, name := range letters {
			r, err := d.query(network(i), name, dns.TypeA)
			if err != nil {
				t.Fatalf("%s: %v", phase, err)
			}
			if r.Rcode != wantRcode {
				t.Fatalf("%s: %s over %s: %s, want %s", phase, name, network(i),
					dns.RcodeToString[r.Rcode], dns.RcodeToString[wantRcode])
			}
		}
	}
	ask("up", dns.RcodeSuccess)
	ub.signal(syscall.SIGSTOP)
	ask("silent", dns.RcodeServerFailure)
	ub.kill()
	ask("gone", dns.RcodeServerFailure)
	ub.restart()
	// Back: wait for the upstream to answer again, through a probe or a
	// fresh dial.
	deadline := time.Now().Add(healthWait)
	for {
		r, err := d.query("udp", letters[0], dns.TypeA)
		if err == nil && r.Rcode == dns.RcodeSuccess {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upstream did not answer again within %v of its restart (last: %v, %v)", healthWait, r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ask("back", dns.RcodeSuccess)

	packets := capture.stop(t)
	onPort, other := splitPackets(t, packets, privacyDoHUpstream, ub.addr.Port())
	t.Logf("capture: %d packets to or from %s, %d on its HTTPS port %d", len(packets), privacyDoHUpstream, onPort, ub.addr.Port())
	if onPort == 0 {
		t.Errorf("no packet to or from the HTTPS port %v: did the capture see the traffic?\n%s", ub.addr, strings.Join(packets, "\n"))
	}
	if len(other) > 0 {
		t.Errorf("%d packets to or from %s not on its HTTPS port %d:\n%s",
			len(other), privacyDoHUpstream, ub.addr.Port(), strings.Join(other, "\n"))
	}
}
