// Package hosts reads the names of the house from files: /etc/hosts-format
// files and dnsmasq's DHCP lease file (the format OpenWrt and most routers
// write), and tells when they changed, so that they can be read again
// without a restart. It owns parsing and change detection; answering
// queries from the names, and when to look for changes, are its callers'.
package hosts

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Entry is one name and one of its addresses.
type Entry struct {
	Name string // lower case, fully qualified (trailing dot)
	Addr netip.Addr
}

// Problem is a line of a file that was skipped, and why.
type Problem struct {
	File string
	Line int
	Msg  string
}

// Error formats p as FILE:LINE: MSG.
func (p Problem) Error() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// maxLine bounds a line: a hosts line of a few names is far shorter, and
// a file that is not text must not cost memory.
const maxLine = 4096

// Parse reads r, the file named file, line by line. Each line is either
// a hosts line ("ADDRESS NAME [ALIAS...]", "#" to the end of a line a
// comment) or a dnsmasq lease line ("EXPIRY MAC-OR-IAID ADDRESS HOSTNAME
// CLIENT-ID", HOSTNAME "*" when the client gave none, EXPIRY 0 for a
// lease that never ends; dnsmasq's "duid" line is skipped). A lease that
// expired before now is left out. A single-label name also gets domain
// appended when domain is not "", as dnsmasq's expand-hosts does: the
// router's DHCP clients are "nas" in the lease file and "nas.lan" to the
// house. A line that cannot be read is a Problem and is skipped; the rest
// of the file is used.
func Parse(r io.Reader, file, domain string, now time.Time) ([]Entry, []Problem) {
	var entries []Entry
	var problems []Problem
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	suffix := ""
	if domain != "" {
		suffix = "." + strings.ToLower(strings.Trim(domain, ".")) + "."
	}
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) == 0 || f[0] == "duid" {
			continue
		}
		names, addr, skip, err := parseLine(f, now)
		if err != nil {
			problems = append(problems, Problem{File: file, Line: line, Msg: err.Error()})
			continue
		}
		if skip {
			continue
		}
		for _, n := range names {
			name := strings.ToLower(strings.TrimSuffix(n, "."))
			if !isHostname(name) {
				problems = append(problems, Problem{File: file, Line: line, Msg: fmt.Sprintf("%q is not a host name", n)})
				continue
			}
			entries = append(entries, Entry{Name: name + ".", Addr: addr})
			if suffix != "" && !strings.Contains(name, ".") {
				entries = append(entries, Entry{Name: name + suffix, Addr: addr})
			}
		}
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, Problem{File: file, Msg: "reading: " + err.Error()})
	}
	return entries, problems
}

// parseLine reads the fields of one line: a hosts line when the first is
// an address, else a lease line. skip: a lease without a name, or
// expired.
func parseLine(f []string, now time.Time) (names []string, addr netip.Addr, skip bool, err error) {
	if a, aerr := netip.ParseAddr(f[0]); aerr == nil {
		if len(f) < 2 {
			return nil, addr, false, fmt.Errorf("%s has no name", f[0])
		}
		if a.Zone() != "" {
			return nil, addr, false, fmt.Errorf("%s: an address with a zone means nothing to other hosts", f[0])
		}
		return f[1:], a.Unmap(), false, nil
	}
	expiry, perr := strconv.ParseInt(f[0], 10, 64)
	if perr != nil || len(f) < 4 {
		return nil, addr, false, fmt.Errorf("neither a hosts line (ADDRESS NAME...) nor a lease line (EXPIRY MAC ADDRESS NAME ID)")
	}
	a, aerr := netip.ParseAddr(f[2])
	if aerr != nil || a.Zone() != "" {
		return nil, addr, false, fmt.Errorf("lease: %q is not an address", f[2])
	}
	if f[3] == "*" || expiry != 0 && time.Unix(expiry, 0).Before(now) {
		return nil, addr, true, nil
	}
	return f[3:4], a.Unmap(), false, nil
}

// isHostname: labels of letters, digits and hyphens (and underscores,
// which Windows clients put in their DHCP names), 1-63 octets, 253 in all.
func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
