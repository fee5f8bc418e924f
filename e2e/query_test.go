package e2e

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// logWait bounds the wait for a line that dotproxy logs as it answers: the
// line is written before the answer, but read from its stderr after.
const logWait = 10 * time.Second

// oneUnbound starts an Unbound and a dotproxy forwarding to it.
func oneUnbound(t *testing.T) (*dotproxy, *unbound) {
	t.Helper()
	ub := startUnbound(t, newPKI(t), "127.0.0.2")
	return startDotproxy(t, proxyConfig{upstreams: []upstreamConf{ub.upstream("unbound")}}), ub
}

// TestDigOverUDPAndTCP: dig gets Unbound's record through dotproxy over
// UDP and TCP, and the debug log shows each step of the query, the
// upstream leg over TLS 1.3.
func TestDigOverUDPAndTCP(t *testing.T) {
	tool(t, "dig", "dnsutils")
	d, _ := oneUnbound(t)
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			args := []string{"example.com", "A"}
			if transport == "tcp" {
				args = append(args, "+tcp")
			}
			a, out := d.dig(t, args...)
			if a.status != "NOERROR" || !slices.Equal(a.data("A"), []string{exampleIP}) {
				t.Fatalf("dig: status %s, A %q; want NOERROR, [%s]\n%s", a.status, a.data("A"), exampleIP, out)
			}
			if want := "(" + strings.ToUpper(transport) + ")"; !strings.Contains(out, want) {
				t.Errorf("dig did not report the transport %s:\n%s", want, out)
			}
			i := d.waitLog(logWait, 0, "query received", "id", a.id, "transport", transport, "qname", "example.com.")
			i = d.waitLog(logWait, i+1, "query sent", "upstream", "unbound", "qname", "example.com.", "tls", "TLS 1.3")
			i = d.waitLog(logWait, i+1, "answer received", "upstream", "unbound", "qname", "example.com.", "rcode", "NOERROR")
			d.waitLog(logWait, i+1, "answer returned", "id", a.id, "transport", transport, "rcode", "NOERROR")
		})
	}
}

// letters are the names [a-d].example.com in order.
var letters = []string{"a.example.com.", "b.example.com.", "c.example.com.", "d.example.com."}

// checkLetters checks that answers hold, in any order, one correct answer
// for each of letters, and returns their IDs.
func checkLetters(t *testing.T, answers []*answer, out string) []string {
	t.Helper()
	if len(answers) != len(letters) {
		t.Fatalf("%d answers, want %d:\n%s", len(answers), len(letters), out)
	}
	seen := map[string]bool{}
	var ids []string
	for _, a := range answers {
		if a.status != "NOERROR" || len(a.records) != 1 || letterIPs[a.records[0].name] != a.records[0].data {
			t.Fatalf("answer %s: status %s, records %v; want NOERROR and one of %v\n%s", a.id, a.status, a.records, letterIPs, out)
		}
		seen[a.records[0].name] = true
		ids = append(ids, a.id)
	}
	if len(seen) != len(letters) {
		t.Fatalf("answered names %v, want all of %v\n%s", seen, letters, out)
	}
	return ids
}

// checkOneConnection checks from the log that the queries with ids came
// over TCP from one client address and port: one connection.
func (d *dotproxy) checkOneConnection(t *testing.T, ids []string) {
	t.Helper()
	clients := map[string]bool{}
	for _, id := range ids {
		i := d.waitLog(logWait, 0, "query received", "id", id, "transport", "tcp")
		clients[d.log()[i].get("client")] = true
	}
	if len(clients) != 1 {
		t.Errorf("the queries came from %v, want one connection", clients)
	}
}

// TestTCPConnectionReuse: several queries on one TCP connection, sent one
// after another (kdig +keepopen) and pipelined, all before the first
// answer is read (mdig, and a Go client writing raw DNS over TCP).
func TestTCPConnectionReuse(t *testing.T) {
	d, _ := oneUnbound(t)
	port := fmt.Sprint(d.addr.Port())
	server := "@" + d.addr.Addr().String()

	// kdig cannot pipeline: +keepopen reuses the connection, one query
	// at a time.
	t.Run("kdig keepopen", func(t *testing.T) {
		kdig := tool(t, "kdig", "knot-dnsutils")
		res := run(t, "", nil, kdig, append([]string{server, "-p", port, "+tcp", "+keepopen", "+timeout=10", "+retry=0"}, letters...)...)
		if res.code != 0 {
			t.Fatalf("kdig: status %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		d.checkOneConnection(t, checkLetters(t, parseAnswers(res.stdout), res.stdout))
	})

	// mdig sends all its queries before it reads an answer.
	t.Run("mdig pipelined", func(t *testing.T) {
		mdig := tool(t, "mdig", "dnsutils")
		res := run(t, "", nil, mdig, append([]string{server, "-p", port, "+vc", "+tries=1", "+timeout=10"}, letters...)...)
		if res.code != 0 {
			t.Fatalf("mdig: status %d\n%s%s", res.code, res.stdout, res.stderr)
		}
		d.checkOneConnection(t, checkLetters(t, parseAnswers(res.stdout), res.stdout))
	})

	t.Run("raw pipelined", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", d.addr.String(), clientTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(clientTimeout))
		// All queries in one write, before anything is read.
		var buf []byte
		want := map[uint16]string{}
		for i, name := range letters[:3] {
			q := new(dns.Msg).SetQuestion(name, dns.TypeA)
			q.Id = uint16(1000 + i)
			want[q.Id] = name
			wire, err := q.Pack()
			if err != nil {
				t.Fatal(err)
			}
			buf = binary.BigEndian.AppendUint16(buf, uint16(len(wire)))
			buf = append(buf, wire...)
		}
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		for range want {
			r := readTCPMsg(t, c)
			name, ok := want[r.Id]
			if !ok {
				t.Fatalf("answer with unexpected or repeated ID %d:\n%v", r.Id, r)
			}
			delete(want, r.Id)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || len(r.Question) != 1 || r.Question[0].Name != name {
				t.Fatalf("answer %d for %s:\n%v", r.Id, name, r)
			}
			if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != letterIPs[name] {
				t.Fatalf("answer %d for %s: %v, want A %s", r.Id, name, r.Answer[0], letterIPs[name])
			}
		}
	})
}

// readTCPMsg reads one length-prefixed DNS message from c.
func readTCPMsg(t *testing.T, c net.Conn) *dns.Msg {
	t.Helper()
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		t.Fatalf("reading answer length: %v", err)
	}
	wire := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(c, wire); err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(wire); err != nil {
		t.Fatalf("unpacking answer: %v", err)
	}
	return r
}

// TestTruncationOverUDP: an answer larger than 512 bytes reaches a client
// without EDNS over UDP truncated, with TC set; dig, which then retries
// over TCP, gets all of it.
func TestTruncationOverUDP(t *testing.T) {
	tool(t, "dig", "dnsutils")
	d, _ := oneUnbound(t)

	a, out := d.dig(t, "+ignore", "+noedns", bigName, "TXT")
	if a.status != "NOERROR" || !a.hasFlag("tc") || len(a.records) >= bigCount {
		t.Errorf("UDP without EDNS: status %s, flags %v, %d records; want NOERROR, tc, fewer than %d\n%s",
			a.status, a.flags, len(a.records), bigCount, out)
	}
	d.waitLog(logWait, 0, "answer returned", "id", a.id, "transport", "udp", "truncated", "true")

	a, out = d.dig(t, bigName, "TXT")
	if !strings.Contains(out, "Truncated, retrying in TCP mode") || !strings.Contains(out, "(TCP)") {
		t.Errorf("dig did not retry over TCP:\n%s", out)
	}
	var want []string
	for i := range bigCount {
		want = append(want, bigText(i))
	}
	got := a.data("TXT")
	slices.Sort(got)
	if a.status != "NOERROR" || a.hasFlag("tc") || !slices.Equal(got, want) {
		t.Errorf("after the TCP retry: status %s, flags %v, %d TXT records; want NOERROR, no tc, all %d\n%s",
			a.status, a.flags, len(got), bigCount, out)
	}
}
