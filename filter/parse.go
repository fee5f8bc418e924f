package filter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

const (
	// maxListBytes bounds one list, downloaded or read: the biggest
	// lists in common use are tens of MB; more is a wrong URL, or a
	// server feeding a router more than it can hold.
	maxListBytes = 128 << 20
	// maxNameLen is the longest name in presentation form without the
	// trailing dot (RFC 1035: 255 octets on the wire).
	maxNameLen = 253
	// maxLabelLen is RFC 1035's limit on one label.
	maxLabelLen = 63
	// malformedSamples is how many malformed lines the log quotes.
	malformedSamples = 5
)

// Why a line is not a rule. The log quotes them next to the line.
var (
	errNotName    = errors.New("not a domain name")
	errNonASCII   = errors.New("not ASCII: write internationalized names in punycode (xn--)")
	errIPName     = errors.New("an IP address, not a name")
	errNotHosts   = errors.New("several fields, but the first is not an IP address")
	errModifier   = errors.New("adblock modifiers ($...) are not supported")
	errNotDNSRule = errors.New("not a DNS rule (a path, a pattern or a cosmetic rule)")

	errHTML     = errors.New("looks like HTML, not a list (an error page?)")
	errLongLine = fmt.Errorf("has a line longer than %d KiB: not a list", bufio.MaxScanTokenSize>>10)
	errTooBig   = fmt.Errorf("larger than %d MiB", maxListBytes>>20)
	errGarbage  = errors.New("more than half of its rule lines are malformed")
)

// parsed is one list's content, parsed.
type parsed struct {
	table     *table
	lines     int      // lines that held, or should have held, a rule
	malformed int      // of those, lines skipped
	samples   []string // the first few skipped lines, with their numbers and why
}

// parse reads a list in any of the formats below, line by line, and
// returns its rules. In an allowlist every rule is an exception.
//
//	0.0.0.0 ads.example.com tracker.example.com   hosts file: any IP, then names
//	ads.example.com                                plain domain list
//	*.example.com                                  the names under example.com, not itself
//	||ads.example.com^                             adblock: the name and its subdomains
//	|ads.example.com^                              adblock start anchor: the name only
//	@@||ads.example.com^                           adblock exception: allowed
//	# comment, ! comment, [Adblock Plus 2.0]       ignored, as is anything after " #" or " !"
//
// Every listed name also covers its subdomains, except |name^ and *.name.
// Names are matched without case and without a trailing dot; IDNs must be
// in punycode. A line that is none of these is skipped and counted; a
// list that looks like HTML, or of whose rule lines more than half are
// malformed, is rejected as a whole.
func parse(r io.Reader, allowList bool) (*parsed, error) {
	lr := &limitReader{r: r, left: maxListBytes + 1}
	sc := bufio.NewScanner(lr)
	var b tableBuilder
	p := &parsed{}
	// Lines stay in the scanner's buffer: a million of them are parsed
	// without a million allocations, which would set the peak memory of
	// a refresh, when the old version is still held.
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\uFEFF")) // a byte order mark
		}
		line = ruleText(line)
		if len(line) == 0 {
			continue
		}
		if line[0] == '<' && p.lines == 0 {
			return nil, errHTML
		}
		p.lines++
		if err := b.parseLine(line, allowList); err != nil {
			p.malformed++
			if len(p.samples) < malformedSamples {
				p.samples = append(p.samples, fmt.Sprintf("line %d: %q: %v", n, clip(line), err))
			}
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, errLongLine
	} else if err != nil {
		return nil, err
	}
	if p.malformed*2 > p.lines {
		return nil, fmt.Errorf("%w (%d of %d; %s)", errGarbage, p.malformed, p.lines, strings.Join(p.samples, "; "))
	}
	p.table = b.build()
	return p, nil
}

// ruleText returns what a line holds apart from comments and white
// space. A comment that follows an entry must follow white space: '#'
// also appears inside cosmetic adblock rules (example.com##.ad), which
// must stay malformed, not become example.com.
func ruleText(line []byte) []byte {
	for i := 1; i < len(line); i++ {
		if (line[i] == '#' || line[i] == '!') && (line[i-1] == ' ' || line[i-1] == '\t') {
			line = line[:i]
			break
		}
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '#' || line[0] == '!' || line[0] == '[' {
		return nil
	}
	return line
}

// parseLine adds the rules of one line that is neither blank nor a
// comment, or says why it holds none.
func (b *tableBuilder) parseLine(line []byte, allowList bool) error {
	if bytes.ContainsAny(line, " \t") {
		return b.hostsLine(line, allowList)
	}
	k := blockTree
	tok := line
	if rest, ok := bytes.CutPrefix(tok, []byte("@@")); ok {
		if !bytes.HasPrefix(rest, []byte("|")) {
			return errNotDNSRule
		}
		tok, allowList = rest, true
	}
	if rest, ok := bytes.CutPrefix(tok, []byte("||")); ok {
		tok = rest
	} else if rest, ok := bytes.CutPrefix(tok, []byte("|")); ok {
		tok, k = rest, blockExact
	}
	if len(tok) != len(line) || bytes.HasSuffix(tok, []byte("^")) {
		if bytes.IndexByte(tok, '$') >= 0 {
			return errModifier
		}
		tok = bytes.TrimSuffix(bytes.TrimSuffix(tok, []byte("|")), []byte("^"))
	}
	if rest, ok := bytes.CutPrefix(tok, []byte("*.")); ok {
		tok, k = rest, blockBelow
	}
	if bytes.ContainsAny(tok, "/*:?=^|$#") {
		return errNotDNSRule
	}
	name, err := checkName(tok)
	if err != nil {
		return err
	}
	if allowList {
		k <<= allowShift
	}
	b.add(name, k)
	return nil
}

// hostsLine adds the names of a hosts-file line: an address, then names.
// The address does not matter: every listed name is blocked (or allowed).
// Names a hosts file maps to the machine itself are skipped, not counted.
func (b *tableBuilder) hostsLine(line []byte, allowList bool) error {
	i := bytes.IndexAny(line, " \t")
	if !isIP(line[:i]) {
		return errNotHosts
	}
	k := blockTree
	if allowList {
		k <<= allowShift
	}
	var buf [8][]byte
	names := buf[:0] // all are checked before any is added
	for f := range bytes.FieldsSeq(line[i:]) {
		if isIP(f) {
			continue // 0.0.0.0 0.0.0.0
		}
		name, err := checkName(f)
		if err != nil {
			return err
		}
		if bytes.IndexByte(name, '.') < 0 || bytes.EqualFold(name, []byte("localhost.localdomain")) {
			continue // the machine's own names: localhost, broadcasthost, ip6-loopback
		}
		names = append(names, name)
	}
	for _, name := range names {
		b.add(name, k)
	}
	return nil
}

// isIP reports whether s is an IP address. It spares names, and the
// addresses hosts files use, the conversion to a string and the parse.
func isIP(s []byte) bool {
	switch string(s) {
	case "0.0.0.0", "127.0.0.1", "::", "::1":
		return true
	}
	if bytes.IndexByte(s, ':') < 0 {
		for _, c := range s {
			if (c < '0' || c > '9') && c != '.' {
				return false
			}
		}
	}
	_, err := netip.ParseAddr(string(s))
	return err == nil
}

// checkName checks that s is a domain name and returns it without a
// trailing dot; letter case is left to the caller. Letters, digits, '-'
// and '_' (in SRV and tracking names alike) are allowed.
func checkName(s []byte) ([]byte, error) {
	s = bytes.TrimSuffix(s, []byte("."))
	if len(s) == 0 || len(s) > maxNameLen {
		return nil, errNotName
	}
	label, numeric := 0, true
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_':
			numeric = false
		case c >= '0' && c <= '9':
		case c == '.':
			if label == 0 {
				return nil, errNotName
			}
			label, numeric = 0, true
			continue
		case c >= 0x80:
			return nil, errNonASCII
		default:
			return nil, errNotName
		}
		if label++; label > maxLabelLen {
			return nil, errNotName
		}
	}
	if label == 0 {
		return nil, errNotName
	}
	if numeric {
		return nil, errIPName // no top-level domain is all digits
	}
	return s, nil
}

// normalizeName checks that s is a domain name and returns it in lower
// case, without a trailing dot.
func normalizeName(s string) (string, error) {
	name, err := checkName([]byte(s))
	if err != nil {
		return "", err
	}
	return strings.ToLower(string(name)), nil
}

// clip shortens a line for the log.
func clip(s []byte) string {
	const n = 80
	if len(s) <= n {
		return string(s)
	}
	return string(s[:n]) + "…"
}

// limitReader fails with errTooBig once it has read left bytes: one more
// than the largest list allowed.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errTooBig
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	if l.left -= int64(n); l.left <= 0 {
		return n, errTooBig
	}
	return n, err
}
