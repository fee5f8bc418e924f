package filter

import (
	"fmt"
	"net"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

const (
	// blockTTL is the TTL of block answers: long enough to spare us a
	// web page's burst of repeats, short enough that a name taken off a
	// list, or allowed, works again within seconds.
	blockTTL = 10
	// localTTL is the TTL of local records and of the locally served
	// zones' answers: the LAN asks often, and an edited record should
	// reach it within a minute.
	localTTL = 60
)

// blockMode is what a blocked query gets.
type blockMode int

const (
	blockNXDomain blockMode = iota // NXDOMAIN: the name does not exist
	blockNoData                    // NOERROR, no records: the name exists, the type does not
	blockRefused                   // REFUSED
	blockNullIP                    // 0.0.0.0 for A, :: for AAAA, NODATA for other types
)

// The values of Options.BlockResponse.
const (
	BlockNXDomain = "nxdomain" // the default
	BlockNoData   = "nodata"
	BlockRefused  = "refused"
	BlockNullIP   = "null_ip"
)

func parseBlockResponse(s string) (blockMode, error) {
	switch s {
	case "", BlockNXDomain:
		return blockNXDomain, nil
	case BlockNoData:
		return blockNoData, nil
	case BlockRefused:
		return blockRefused, nil
	case BlockNullIP:
		return blockNullIP, nil
	}
	return 0, fmt.Errorf("block_response %q: want %s, %s, %s or %s", s, BlockNXDomain, BlockNoData, BlockRefused, BlockNullIP)
}

// blockReply is the answer to the blocked query q. zone, an ancestor of
// the query name or the name itself, owns the SOA record that lets the
// client cache a negative answer (RFC 2308). Every block answer carries
// Extended DNS Error 15 (Blocked, RFC 8914) with text, when the client
// speaks EDNS.
func blockReply(q *resolver.Request, mode blockMode, zone, text string) *dns.Msg {
	m := q.Reply(dns.RcodeSuccess)
	m.RecursionAvailable = true
	switch mode {
	case blockNXDomain:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa(zone, blockTTL)}
	case blockNoData:
		m.Ns = []dns.RR{soa(zone, blockTTL)}
	case blockRefused:
		m.Rcode = dns.RcodeRefused
	case blockNullIP:
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Ttl: blockTTL}
		switch q.Qtype {
		case dns.TypeA:
			hdr.Rrtype = dns.TypeA
			m.Answer = []dns.RR{&dns.A{Hdr: hdr, A: net.IPv4zero.To4()}}
		case dns.TypeAAAA:
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = []dns.RR{&dns.AAAA{Hdr: hdr, AAAA: net.IPv6zero}}
		default:
			m.Ns = []dns.RR{soa(zone, blockTTL)}
		}
	}
	resolver.SetEDE(m, q, dns.ExtendedErrorCodeBlocked, text)
	return m
}

// soa is the SOA record of a zone we answer for ourselves. Its minimum
// and TTL are the negative-caching TTL; the rest is never used but must
// be there.
func soa(zone string, ttl uint32) *dns.SOA {
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      "localhost.",
		Mbox:    "nobody.invalid.",
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  ttl,
	}
}

// localReply starts an authoritative answer to q.
func localReply(q *resolver.Request, rcode int) *dns.Msg {
	m := q.Reply(rcode)
	m.Authoritative = true
	m.RecursionAvailable = true
	return m
}
