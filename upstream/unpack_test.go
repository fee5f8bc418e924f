package upstream

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// answerOfEveryKind is a reply to q holding records whose data
// miekg/dns unpacks into byte slices, strings and options: what would
// change with the buffer it was read from, were any of it kept rather
// than copied. To a query for ANY, scrub keeps all of it.
func answerOfEveryKind(t *testing.T, q *dns.Msg) *dns.Msg {
	t.Helper()
	name := q.Question[0].Name
	r := new(dns.Msg).SetReply(q)
	for _, s := range []string{
		"60 IN A 192.0.2.1",
		"60 IN AAAA 2001:db8::1",
		"60 IN CNAME b.test.",
		`60 IN TXT "some text" "more"`,
		"60 IN MX 10 mx.test.",
		"60 IN HTTPS 1 . alpn=h2 ipv4hint=192.0.2.2 ech=AEn+DQBFKwAgACABWIHUGj4u+PIggYXcR5JF0gYk3dCRioBW8uJq9H4mKAAIAAEAAQABAANAEnB1YmxpYy50bHMtZWNoLmRldgAA",
		"60 IN TYPE65280 \\# 4 deadbeef",
		"60 IN DS 12345 13 2 2BB183AF5F22588179A53B0A98631FAD1A292118",
	} {
		rr, err := dns.NewRR(name + " " + s)
		if err != nil {
			t.Fatal(err)
		}
		r.Answer = append(r.Answer, rr)
	}
	r.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns: "ns.test.", Mbox: "host.test.", Serial: 1, Refresh: 2, Retry: 3, Expire: 4, Minttl: 5}}
	r.SetEdns0(1232, true)
	opt := r.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, 40)},
		&dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeOther, ExtraText: "why"},
		&dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2, 3}})
	return r
}

// longAnswer answers q with one TXT record of two 250-octet strings:
// longer than answerOfEveryKind's, so that an answer read after it fits
// the buffer it grew (TestEveryKindFitsTheLongAnswersBuffer).
func longAnswer(q *dns.Msg) *dns.Msg {
	r := new(dns.Msg).SetReply(q)
	r.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
		Txt: []string{strings.Repeat("Z", 250), strings.Repeat("Y", 250)}}}
	return r
}

// TestAnswerKeepsNoBuffer: a DoT connection reads every answer into the
// same buffer, so an answer already handed on must keep nothing of it. A
// long answer first grows the buffer; the answer of every kind is read
// into it; the long one again overwrites all of it.
func TestAnswerKeepsNoBuffer(t *testing.T) {
	ca := dottest.NewCA(t)
	srv := startServer(t, ca, func(q *dns.Msg, reply func(*dns.Msg)) {
		if q.Question[0].Qtype == dns.TypeANY {
			reply(answerOfEveryKind(t, q))
			return
		}
		reply(longAnswer(q))
	})
	u := newUpstream(t, ca, srv, Options{MaxConns: 1})
	ctx := ctxFor(t, 10*time.Second)
	long := func() {
		t.Helper()
		if _, err := u.Exchange(ctx, query("every.test.", dns.TypeTXT)); err != nil {
			t.Fatal(err)
		}
	}
	long()
	first, err := u.Exchange(ctx, query("every.test.", dns.TypeANY))
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Answer) != 8 {
		t.Fatalf("%d answer records, want 8: %v", len(first.Answer), first)
	}
	before := first.String()
	long()
	if after := first.String(); after != before {
		t.Errorf("the answer changed when the next was read over it:\nbefore %s\nafter  %s", before, after)
	}
}
