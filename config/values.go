package config

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Each parser here turns one text value, from the file or the environment,
// into its typed form. Its error is the whole problem description, without
// the key: the caller adds where the value came from.

const (
	listenPort   = 53  // plain DNS
	upstreamPort = 853 // DNS over TLS, RFC 7858 §3.1
)

// parseAddrPort parses "ip:port", "[ipv6]:port", a bare IP or a bracketed
// IPv6 literal, giving the last two port defPort. Port 0 is refused: it
// cannot be dialled, and a listener on a random port is of no use.
func parseAddrPort(s string, defPort uint16) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		a, aerr := parseIP(s)
		if aerr != nil {
			return netip.AddrPort{}, fmt.Errorf("%q is not an address:port", s)
		}
		ap = netip.AddrPortFrom(a, defPort)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q has port 0", s)
	}
	return ap, nil
}

// parseIP parses an IP address, IPv6 with or without brackets.
func parseIP(s string) (netip.Addr, error) {
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	return netip.ParseAddr(s)
}

func parseListen(s string) (netip.AddrPort, error) { return parseAddrPort(s, listenPort) }

// parseUpstreamAddr is parseAddrPort for an upstream: an IP, since a
// resolver's name goes in tls_name, and not the unspecified address.
func parseUpstreamAddr(s string) (netip.AddrPort, error) {
	ap, err := parseAddrPort(s, upstreamPort)
	if err != nil {
		return ap, fmt.Errorf("%q is not an IP address[:port]", s)
	}
	if ap.Addr().IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("%q is the unspecified address, not a resolver's", s)
	}
	return ap, nil
}

// parsePrefix parses a CIDR prefix, masking host bits, or a bare IP as a
// /32 or /128.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parsePort parses a port number, 1 to 65535.
func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return uint16(n), nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}

func parsePositiveDuration(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err == nil && d <= 0 {
		err = fmt.Errorf("must be positive, got %q", s)
	}
	return d, err
}

func parseNonNegativeDuration(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err == nil && d < 0 {
		err = fmt.Errorf("must not be negative, got %q", s)
	}
	return d, err
}

// parseCount parses a limit or a threshold: every integer in the
// configuration counts something of which zero makes no sense.
func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	if n < 1 {
		return 0, fmt.Errorf("must be at least 1, got %d", n)
	}
	return n, nil
}

func parseName(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", errors.New("must not be empty")
	}
	return s, nil
}

// parseTLSName accepts a DNS host name (letters, digits and hyphens in
// labels of 1-63 characters, 253 in all) and drops a trailing dot, which
// certificate names do not carry.
func parseTLSName(s string) (string, error) {
	name := strings.TrimSuffix(s, ".")
	if _, err := netip.ParseAddr(name); err == nil {
		return "", fmt.Errorf("%q is an IP address; give the host name on the resolver's certificate", s)
	}
	if !isHostname(name) {
		return "", fmt.Errorf("%q is not a valid host name", s)
	}
	return name, nil
}

func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// parsePin decodes an SPKI pin: standard base64 of a SHA-256 digest.
func parsePin(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not base64", s)
	}
	if len(b) != sha256.Size {
		return nil, fmt.Errorf("%q decodes to %d bytes, not the %d of a SHA-256 digest", s, len(b), sha256.Size)
	}
	return b, nil
}

// checkCAFile checks that path names a readable file holding at least one
// PEM certificate, and returns path unchanged (relative to the working
// directory, like any path the process opens).
func checkCAFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return "", fmt.Errorf("%q holds no PEM certificate", path)
	}
	return path, nil
}

// probe is the parsed form of health.probe.
type probe struct {
	name  string
	qtype uint16
}

// parseProbe parses "NAME TYPE", such as ". NS".
func parseProbe(s string) (probe, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return probe{}, fmt.Errorf(`%q is not "NAME TYPE", such as ". NS"`, s)
	}
	name := dns.Fqdn(f[0])
	if _, ok := dns.IsDomainName(name); !ok || wireLen(name) > maxNameLen {
		return probe{}, fmt.Errorf("%q: %q is not a domain name", s, f[0])
	}
	t, ok := dns.StringToType[strings.ToUpper(f[1])]
	if !ok {
		return probe{}, fmt.Errorf("%q: %q is not a query type", s, f[1])
	}
	return probe{name: name, qtype: t}, nil
}

// maxNameLen is the most octets a domain name may have on the wire (RFC
// 1035 §2.3.4). dns.IsDomainName lets one more through, which dns.Msg
// packs but will not unpack: every answer to a probe for such a name
// would be refused as malformed.
const maxNameLen = 255

// wireLen is the length of the fully qualified domain name on the wire,
// or maxNameLen+1 if it does not pack.
func wireLen(name string) int {
	n, err := dns.PackDomainName(name, make([]byte, maxNameLen+1), 0, nil, false)
	if err != nil {
		return maxNameLen + 1
	}
	return n
}

// oneOf returns a parser accepting exactly the given words.
func oneOf(words ...string) func(string) (string, error) {
	return func(s string) (string, error) {
		for _, w := range words {
			if s == w {
				return s, nil
			}
		}
		return "", fmt.Errorf("%q is not one of %s", s, strings.Join(words, " | "))
	}
}

var (
	parsePolicy    = oneOf("fastest", "round_robin", "random", "ordered")
	parseLogFormat = oneOf("text", "json")
)

// logLevels are the levels config.yaml documents. slog also accepts
// offsets such as "warn+2"; they are not offered.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

func parseLogLevel(s string) (slog.Level, error) {
	l, ok := logLevels[s]
	if !ok {
		return 0, fmt.Errorf("%q is not one of debug | info | warn | error", s)
	}
	return l, nil
}
