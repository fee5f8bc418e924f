package filter

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// LoopbackZone is the locally served zone whose every name answers the
// loopback addresses (RFC 6761 §6.3).
const LoopbackZone = "localhost."

// LocalZones returns the zones answered here and never sent upstream, so
// that names meant for the LAN do not leak to a public resolver, each in
// lower case with its trailing dot: home.arpa (RFC 8375), local (mDNS,
// RFC 6762), localhost, invalid (RFC 6761), onion (RFC 7686), and the
// reverse zones of private, loopback, link-local, shared and
// documentation addresses (RFC 6303, RFC 7793).
func LocalZones() []string {
	zones := []string{
		"home.arpa.", "local.", LoopbackZone, "invalid.", "onion.",
		"10.in-addr.arpa.", "168.192.in-addr.arpa.", "254.169.in-addr.arpa.",
		"0.in-addr.arpa.", "127.in-addr.arpa.", "255.255.255.255.in-addr.arpa.",
		"2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.", "113.0.203.in-addr.arpa.",
		"d.f.ip6.arpa.", "8.e.f.ip6.arpa.", "9.e.f.ip6.arpa.", "a.e.f.ip6.arpa.", "b.e.f.ip6.arpa.",
		"8.b.d.0.1.0.0.2.ip6.arpa.",
		strings.Repeat("0.", 32) + "ip6.arpa.",        // ::
		"1." + strings.Repeat("0.", 31) + "ip6.arpa.", // ::1
	}
	for i := 16; i <= 31; i++ {
		zones = append(zones, strconv.Itoa(i)+".172.in-addr.arpa.")
	}
	for i := 64; i <= 127; i++ {
		zones = append(zones, strconv.Itoa(i)+".100.in-addr.arpa.")
	}
	return zones
}

// loopback is what localhost names answer.
var loopback = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}

// localNames answers for local_records and the locally served zones.
// Built once by New and only read afterwards. Every name in it is a
// lower-case FQDN.
type localNames struct {
	addrs  map[string][]netip.Addr // local records
	ptrs   map[string][]string     // reverse names of their addresses → names
	exists map[string]bool         // ancestors of the names above: NODATA there, not NXDOMAIN
	zones  map[string]bool         // locally served zones
	tlds   map[string]bool         // their top-level labels, for a quick no
	// forwarded are the domains forward rules send elsewhere: in a
	// locally served zone, a name at or under one is not answered here.
	forwarded map[string]bool
	// clients names the addresses of the hosts files: each the first
	// name the files give it, an FQDN; nil without hosts files.
	clients map[netip.Addr]string
}

func newLocalNames(records map[string][]netip.Addr, forwarded []string) (*localNames, error) {
	ln := &localNames{
		addrs:  make(map[string][]netip.Addr),
		ptrs:   map[string][]string{"1.0.0.127.in-addr.arpa.": {"localhost."}, "1." + strings.Repeat("0.", 31) + "ip6.arpa.": {"localhost."}},
		exists: make(map[string]bool),
		zones:  make(map[string]bool),
		tlds:   make(map[string]bool),
	}
	for _, d := range forwarded {
		if ln.forwarded == nil {
			ln.forwarded = make(map[string]bool, len(forwarded))
		}
		ln.forwarded[strings.ToLower(strings.TrimSuffix(d, "."))+"."] = true
	}
	for _, z := range LocalZones() {
		ln.zones[z] = true
		ln.tlds[z[strings.LastIndexByte(z[:len(z)-1], '.')+1:]] = true
	}
	for raw, addrs := range records {
		n, err := normalizeName(raw)
		if err != nil {
			return nil, fmt.Errorf("local_records %q: %w", raw, err)
		}
		name := n + "."
		if len(addrs) == 0 {
			return nil, fmt.Errorf("local_records %q: no addresses", raw)
		}
		for _, a := range addrs {
			if !a.IsValid() || a.Zone() != "" {
				return nil, fmt.Errorf("local_records %q: %q is not an address DNS can carry", raw, a)
			}
			a = a.Unmap()
			if !slices.Contains(ln.addrs[name], a) {
				ln.addrs[name] = append(ln.addrs[name], a)
			}
		}
	}
	for name, addrs := range ln.addrs {
		for _, a := range addrs {
			rev, _ := dns.ReverseAddr(a.String())
			ln.ptrs[rev] = append(ln.ptrs[rev], name)
		}
	}
	for rev, names := range ln.ptrs {
		slices.Sort(names)
		ln.ptrs[rev] = slices.Compact(names)
		ln.addAncestors(rev)
	}
	for name := range ln.addrs {
		ln.addAncestors(name)
	}
	return ln, nil
}

func (ln *localNames) addAncestors(name string) {
	for i := nextLabel(name); i >= 0; i = nextLabel(name) {
		name = name[i:]
		ln.exists[name] = true
	}
}

// zoneOf returns the locally served zone that holds qname, if any.
func (ln *localNames) zoneOf(qname string) (string, bool) {
	if !ln.tlds[qname[strings.LastIndexByte(qname[:max(len(qname)-1, 0)], '.')+1:]] {
		return "", false
	}
	for s := qname; ; {
		if ln.zones[s] {
			return s, true
		}
		i := nextLabel(s)
		if i < 0 {
			return "", false
		}
		s = s[i:]
	}
}

// isForwarded reports whether qname is at or under a forwarded domain.
func (ln *localNames) isForwarded(qname string) bool {
	if ln.forwarded == nil {
		return false
	}
	for s := qname; ; {
		if ln.forwarded[s] {
			return true
		}
		i := nextLabel(s)
		if i < 0 {
			return false
		}
		s = s[i:]
	}
}

// answer returns the local answer to q, whose name in lower case is
// qname, or nil when q is not for a local name and goes upstream. A
// local record's name answers its addresses, authoritatively; its
// addresses' reverse names answer PTR; every other type gets NODATA.
// In a locally served zone, a name no record covers gets NXDOMAIN.
func (ln *localNames) answer(q *resolver.Request, qname string) *dns.Msg {
	qtype := q.Qtype
	if addrs, ok := ln.addrs[qname]; ok {
		zone, ok := ln.zoneOf(qname)
		if !ok {
			zone = qname
		}
		return withNoData(addressReply(q, addrs), zone)
	}
	if names, ok := ln.ptrs[qname]; ok {
		m := localReply(q, dns.RcodeSuccess)
		if qtype == dns.TypePTR || qtype == dns.TypeANY {
			for _, n := range names {
				m.Answer = append(m.Answer, &dns.PTR{Hdr: rrHeader(q.Name, dns.TypePTR), Ptr: n})
			}
		}
		zone, _ := ln.zoneOf(qname)
		return withNoData(m, zone)
	}
	zone, ok := ln.zoneOf(qname)
	switch {
	case !ok || ln.isForwarded(qname):
		return nil
	case zone == LoopbackZone:
		// RFC 6761 §6.3: localhost and every name under it is loopback.
		return withNoData(addressReply(q, loopback), zone)
	case qname == zone || ln.exists[qname]:
		m := localReply(q, dns.RcodeSuccess)
		if qname == zone && qtype == dns.TypeSOA {
			m.Answer = []dns.RR{soa(zone, localTTL)}
		}
		return withNoData(m, zone)
	default:
		m := localReply(q, dns.RcodeNameError)
		m.Ns = []dns.RR{soa(zone, localTTL)}
		return m
	}
}

// addressReply answers q with those of addrs that are of its type.
func addressReply(q *resolver.Request, addrs []netip.Addr) *dns.Msg {
	m := localReply(q, dns.RcodeSuccess)
	for _, a := range addrs {
		switch {
		case a.Is4() && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY):
			m.Answer = append(m.Answer, &dns.A{Hdr: rrHeader(q.Name, dns.TypeA), A: net.IP(a.AsSlice())})
		case a.Is6() && (q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY):
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: rrHeader(q.Name, dns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
		}
	}
	return m
}

// withNoData adds zone's SOA to m when m answers nothing, making it a
// NODATA answer that the client may cache (RFC 2308).
func withNoData(m *dns.Msg, zone string) *dns.Msg {
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{soa(zone, localTTL)}
	}
	return m
}

func rrHeader(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: localTTL}
}
