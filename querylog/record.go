package querylog

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// Anonymisation keeps the network and drops the host: a /24 is a
// household's or a small office's IPv4 LAN, a /56 what an ISP delegates
// to one customer in IPv6.
const (
	anonBitsV4 = 24
	anonBitsV6 = 56
)

// record is one line of the query log.
type record struct {
	Time       string  `json:"time"` // RFC 3339, UTC, nanoseconds
	Client     string  `json:"client"`
	ClientName string  `json:"client_name,omitempty"` // "" when unknown, or anonymised
	Transport  string  `json:"transport"`
	QName      string  `json:"qname"`
	QType      string  `json:"qtype"`
	Rcode      string  `json:"rcode"`
	Upstream   string  `json:"upstream"` // "" when no upstream's answer was returned
	DurationMS float64 `json:"duration_ms"`
	Cached     bool    `json:"cached"`
	Stale      bool    `json:"stale"`
	Blocked    string  `json:"blocked,omitempty"`
	Local      bool    `json:"local"`
	Rebind     bool    `json:"rebind,omitempty"` // refused by rebinding protection
}

// dropReport is the line that says how many query lines were dropped
// since the last such line, because the writer fell behind.
type dropReport struct {
	Time    string `json:"time"`
	Dropped uint64 `json:"dropped"`
}

func newRecord(ev *resolver.QueryEvent, anonymize bool) record {
	client := ev.Client.Addr()
	if anonymize {
		client = anonymized(client)
	}
	return record{
		Time:       ev.Time.UTC().Format(time.RFC3339Nano),
		Client:     client.Unmap().WithZone("").String(),
		Transport:  ev.Transport.String(),
		QName:      ev.Name,
		QType:      qtypeName(ev.Qtype),
		Rcode:      rcodeName(ev.Rcode),
		Upstream:   ev.Info.Upstream,
		DurationMS: float64(ev.Duration.Microseconds()) / 1000,
		Cached:     ev.Info.Cached,
		Stale:      ev.Info.Stale,
		Blocked:    ev.Info.Blocked,
		Local:      ev.Info.Local,
		Rebind:     ev.Info.Rebind,
	}
}

// anonymized is a with its host bits zeroed: the IPv4 /24 or the IPv6
// /56 it is in. An IPv4 address mapped into IPv6 counts as IPv4.
func anonymized(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	bits := anonBitsV6
	if a.Is4() {
		bits = anonBitsV4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Addr{} // not an address: nothing to keep
	}
	return p.Addr()
}

// qtypeName is t's mnemonic, or TYPEnnn for one without (RFC 3597).
func qtypeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// rcodeName is rc's mnemonic, or RCODEnnn. 16 is BADVERS: to a client of
// ours, who signs nothing, it is not TSIG's BADSIG.
func rcodeName(rc int) string {
	if rc == dns.RcodeBadVers {
		return "BADVERS"
	}
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "RCODE" + strconv.Itoa(rc)
}
