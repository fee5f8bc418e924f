package forward

import (
	"strings"

	"github.com/miekg/dns"
)

// table maps forwarded domains to their rules' indexes. Its keys are
// lower-case FQDNs; a name matches a domain on label boundaries only
// (lan holds nas.lan and lan, not plan).
type table map[string]int

// add records domain (any case, trailing dot optional) for rule i. An
// earlier rule keeps a domain two rules name.
func (t table) add(domain string, i int) {
	key := dns.Fqdn(strings.ToLower(domain))
	if _, ok := t[key]; !ok {
		t[key] = i
	}
}

// lookup returns the rule of the longest domain that holds name, a
// lower-case FQDN, or -1. It walks name's suffixes from the longest, so
// the first hit is the most specific rule. Escaped dots (\.) inside a
// label are not boundaries.
func (t table) lookup(name string) int {
	if len(t) == 0 {
		return -1
	}
	for off, end := 0, false; !end; off, end = dns.NextLabel(name, off) {
		if i, ok := t[name[off:]]; ok {
			return i
		}
	}
	return -1
}

// lowerFQDN returns name in lower case with a trailing dot, without
// copying a name that is that already.
func lowerFQDN(name string) string {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}
