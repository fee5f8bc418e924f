package e2e

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// dohPath is the URL path of every DoH server of these tests: RFC 8484's
// example, and dotproxy's default.
const dohPath = "/dns-query"

// dohMediaType is RFC 8484's media type, of the query and of the answer.
const dohMediaType = "application/dns-message"

// dohProbeTimeout bounds one readiness query to a DoH server.
const dohProbeTimeout = 2 * time.Second

// dohURL is the URL of the DoH server at addr.
func dohURL(addr netip.AddrPort) string { return "https://" + addr.String() + dohPath }

// dohExchange asks the DoH server at url m over HTTP/2 (a POST, RFC 8484
// section 4.1), verifying it with conf: the readiness probe of the DoH
// servers these tests start. An answer over another HTTP version is an
// error, since dotproxy speaks HTTP/2 or nothing.
func dohExchange(conf *tls.Config, url string, m *dns.Msg) (*dns.Msg, error) {
	wire, err := m.Pack()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: conf.Clone(), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: dohProbeTimeout}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(wire))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", dohMediaType)
	req.Header.Set("Accept", dohMediaType)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, dns.MaxMsgSize))
	if err != nil {
		return nil, fmt.Errorf("POST %s: reading the answer: %w", url, err)
	}
	switch {
	case resp.ProtoMajor != 2:
		return nil, fmt.Errorf("POST %s: answered over %s, want HTTP/2", url, resp.Proto)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("POST %s: %s: %q", url, resp.Status, body)
	}
	r := new(dns.Msg)
	if err := r.Unpack(body); err != nil {
		return nil, fmt.Errorf("POST %s: unpacking the answer: %w", url, err)
	}
	return r, nil
}

// checkDigThrough checks that dig, over UDP and over TCP, gets name's A
// record ip through d, and that the log shows the query going to the
// upstream named upstream, over HTTP/2, and its answer coming back from
// it.
func checkDigThrough(t *testing.T, d *dotproxy, upstream, name, ip string) {
	t.Helper()
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			args := []string{name, "A"}
			if transport == "tcp" {
				args = append(args, "+tcp")
			}
			a, out := d.dig(t, args...)
			if a.status != "NOERROR" || !slices.Equal(a.data("A"), []string{ip}) {
				t.Fatalf("dig %q: status %s, A %q; want NOERROR, [%s]\n%s", args, a.status, a.data("A"), ip, out)
			}
			i := d.waitLog(logWait, 0, "query received", "id", a.id, "transport", transport, "qname", name)
			i = d.waitLog(logWait, i+1, "query sent", "upstream", upstream, "qname", name, "http", "HTTP/2")
			i = d.waitLog(logWait, i+1, "answer received", "upstream", upstream, "qname", name, "rcode", "NOERROR")
			d.waitLog(logWait, i+1, "answer returned", "id", a.id, "transport", transport, "rcode", "NOERROR")
		})
	}
}

// TestDoHUnbound: with Unbound's DNS-over-HTTPS server as its one
// upstream, dotproxy answers dig over UDP and TCP, and a 2 KB answer
// whole over TCP; the log shows each query sent to that upstream and
// answered by it, and, at start, the upstream's transport by name. Unbound
// serves nothing but DoH here, so no answer can have come another way.
func TestDoHUnbound(t *testing.T) {
	tool(t, "dig", "dnsutils")
	ub := startUnboundDoH(t, newPKI(t), "127.0.0.2")
	d := startDotproxy(t, proxyConfig{upstreams: []upstreamConf{ub.upstream("unbound-doh")}})

	checkDigThrough(t, d, "unbound-doh", "example.com.", exampleIP)

	a, out := d.dig(t, "+tcp", bigName, "TXT")
	var want []string
	for i := range bigCount {
		want = append(want, bigText(i))
	}
	got := a.data("TXT")
	slices.Sort(got)
	if a.status != "NOERROR" || a.hasFlag("tc") || !slices.Equal(got, want) {
		t.Errorf("dig +tcp %s TXT: status %s, flags %v, %d TXT records; want NOERROR, no tc, all %d\n%s",
			bigName, a.status, a.flags, len(got), bigCount, out)
	}
	d.waitLog(logWait, 0, "answer received", "upstream", "unbound-doh", "qname", bigName, "rcode", "NOERROR")

	t.Run("start-up log", func(t *testing.T) {
		i := d.waitLog(logWait, 0, "upstream", "upstream", "unbound-doh", "path", dohPath)
		if got := d.log()[i].get("transport"); got != "https" {
			t.Errorf("the upstream's start-up log line has transport %q, want \"https\"", got)
		}
	})
}

// dnsdistIP is what dnsdist's backend answers to every A query.
const dnsdistIP = "192.0.2.53"

// TestDoHDnsdist: the same through dnsdist's DNS-over-HTTPS frontend, a
// second DoH server written by others, in front of a plain DNS backend
// on loopback.
func TestDoHDnsdist(t *testing.T) {
	tool(t, "dig", "dnsutils")
	p := newPKI(t)
	backend := dottest.StartPlain(t, dottest.Answer(dnsdistIP), false)
	dd := startDnsdistDoH(t, p, "127.0.0.4", backend.Addr())
	d := startDotproxy(t, proxyConfig{upstreams: []upstreamConf{dd.upstream("dnsdist-doh")}})

	checkDigThrough(t, d, "dnsdist-doh", "example.com.", dnsdistIP)
}
