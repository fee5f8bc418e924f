package dottest

import (
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// Answer answers every query with one A (or AAAA) record for ip, TTL 300.
func Answer(ip string) Handler {
	addr := netip.MustParseAddr(ip)
	return func(q *dns.Msg, reply func(*dns.Msg)) {
		reply(AnswerMsg(q, addr))
	}
}

// AnswerMsg builds the answer to q holding addr, TTL 300, with an OPT
// record when q had one.
func AnswerMsg(q *dns.Msg, addr netip.Addr) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	hdr := dns.RR_Header{Name: q.Question[0].Name, Class: dns.ClassINET, Ttl: 300}
	if addr.Is4() {
		hdr.Rrtype = dns.TypeA
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: addr.AsSlice()})
	} else {
		hdr.Rrtype = dns.TypeAAAA
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: addr.AsSlice()})
	}
	if opt := q.IsEdns0(); opt != nil {
		m.SetEdns0(1232, opt.Do())
	}
	return m
}

// Rcode answers every query with an empty response carrying rcode.
func Rcode(rcode int) Handler {
	return func(q *dns.Msg, reply func(*dns.Msg)) {
		m := new(dns.Msg)
		m.SetRcode(q, rcode)
		reply(m)
	}
}

// Silent reads every query and answers none, as a frozen resolver does.
func Silent() Handler {
	return func(*dns.Msg, func(*dns.Msg)) {}
}

// Delay runs h after d.
func Delay(d time.Duration, h Handler) Handler {
	return func(q *dns.Msg, reply func(*dns.Msg)) {
		time.Sleep(d)
		h(q, reply)
	}
}
