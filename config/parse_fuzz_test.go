package config

import (
	"errors"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/go-multierror"
	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy"
	"github.com/dotproxy/dotproxy/ratelimit"
)

// fuzzFile is the file name the fuzz target passes to Parse.
const fuzzFile = "fuzz.yaml"

// FuzzParse parses arbitrary bytes as the configuration file, then
// applies environment variables given as KEY=VALUE lines on top, as main
// does. Properties:
//
//   - Parse returns a *Config or an error, never both or neither;
//   - an error is a *multierror.Error of *Problems, printed one per line,
//     each line "fuzz.yaml:LINE: ..." with LINE from 1 to the file's
//     last line;
//   - a Config holds what the package promises: nothing left to check;
//   - Parse leaves the built-in default as it was;
//   - ApplyEnv either fails with "environment: KEY: ..." lines and leaves
//     the Config as it was, or leaves a Config that still holds.
//
// DNS_CA_FILE is left out of the environment: it names a file to read,
// as ca_file does, and the fuzzer should not pick files to read.
func FuzzParse(f *testing.F) {
	seeds := []string{
		string(dotproxy.DefaultConfig),
		"",
		"{}\n",
		"# comments only\n",
		"---\n",
		"policy: random\n---\n",
		"policy: random\n---\npolicy: ordered\n",
		"upstreams:\n  - name: a\n    address: 192.0.2.1\n    tls_name: dns.test\n    spki_pins: [\"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"]\n",
		"upstreams:\n  - {name: a, address: \"[2001:db8::1]:8853\", tls_name: dns.test.}\n  - {name: a, address: 1.1.1.1, tls_name: x}\n",
		"upstreams: []\n",
		"upstreams:\n  -\n",
		"upstreams:\n  - {}\n",
		"upstreams: [1.1.1.1]\n",
		"listen: [\"127.0.0.1:5353\", \"127.0.0.1:5353\", \"[::1]:0\"]\n",
		"listen: {a: b}\n",
		"allow: []\n",
		"allow: [10.1.2.3/8, \"fe80::1%eth0\", 192.0.2.1]\n",
		"timeout: 2s\nquery_timeout: 2s\n",
		"query_timeout: 1s\n",
		"timeout: 5s\n",
		"hedge_delay: -1ms\ntimeout: 5\nconnections: {idle_timeout: 0s, max_per_upstream: -1}\n",
		"health:\n  probe: \"example.com. AAAA\"\n  fall: 99999999999999999999\n",
		"health: {probe: \". BOGUS\"}\n",
		// A name of 256 octets, which dns.IsDomainName accepts.
		"health: {probe: \"" + strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("a", 62) + ". NS\"}\n",
		"log: {level: debug, format: json}\ntcp: {max_connections: 1, max_per_client: 1, max_inflight_per_conn: 1, idle_timeout: 1ns}\n",
		"base: &b {interval: 1s}\nhealth: *b\n",
		"health: &h {interval: 1s}\nconnections: *h\n",
		"a: &a [*a]\n",
		"? [complex, key]\n: value\n",
		"policy: random\npolicy: ordered\n",
		"timeout: 1s\nlisten: [a\n",
		"log:\n  level: info\n format: json\n",
		"health:\n\tfall: 1\n",
		"a: b: c\n",
		"policy: \"x\x01\"\n",
		"policy: \xff\xfe\n",
		"\"unknown\\nkey\": 1\n",
		"!!binary aGVsbG8=: 1\n",
		"%YAML 1.1\n---\npolicy: random\n",
		"policy: !custom random\n",
		"<<: {policy: random}\n",
		"max_udp_size: 512\nrate_limit: {enabled: true, slip: 0, ipv4_prefix: 32, ipv6_prefix: 128, exempt: []}\n",
		"max_udp_size: 4097\nrate_limit: {enabled: maybe, burst: 0}\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s), "")
	}
	f.Add([]byte("{}\n"), "HOST=127.0.0.1\nPORT=5353\nDNS_HOST=9.9.9.9")
	f.Add([]byte("{}\n"), "DNS_HOST=192.0.2.1\nDNS_PORT=853\nDNS_TLS_NAME=dns.test")
	f.Add([]byte("{}\n"), "DNS_HOST=0.0.0.0\nDNS_PORT=0\nHOST=x")
	f.Add([]byte("{}\n"), "DNS_TLS_NAME=dns.test")

	def := Default()
	f.Fuzz(func(t *testing.T, data []byte, env string) {
		c, err := Parse(fuzzFile, data)
		if !reflect.DeepEqual(Default(), def) {
			t.Fatal("Parse changed the built-in default")
		}
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c, err)
		}
		if err != nil {
			checkProblems(t, err, fileProblem(data))
			return
		}
		checkConfig(t, c)

		before := c.clone()
		vars := envVars(env)
		if err := ApplyEnv(c, func(k string) string { return vars[k] }); err != nil {
			checkProblems(t, err, envProblem)
			if !reflect.DeepEqual(c, before) {
				t.Fatalf("ApplyEnv failed and changed the config:\n%v", err)
			}
			return
		}
		checkConfig(t, c)
	})
}

var (
	problemLine = regexp.MustCompile(`^` + regexp.QuoteMeta(fuzzFile) + `:([1-9][0-9]*): `)
	envLine     = regexp.MustCompile(`^environment: (HOST|PORT|DNS_HOST|DNS_PORT|DNS_TLS_NAME): `)
)

// fileProblem returns a check of one line of Parse's error for data.
func fileProblem(data []byte) func(string) bool {
	// Any line break YAML knows counts, so that the bound is loose.
	last := 1
	for _, br := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
		last += strings.Count(string(data), br)
	}
	return func(line string) bool {
		m := problemLine.FindStringSubmatch(line)
		if m == nil {
			return false
		}
		n := 0
		for _, d := range m[1] {
			n = n*10 + int(d-'0')
			if n > last {
				return false
			}
		}
		return true
	}
}

func envProblem(line string) bool { return envLine.MatchString(line) }

// checkProblems checks that err is a multierror of Problems printed one
// per line, each line passing lineOK.
func checkProblems(t *testing.T, err error, lineOK func(string) bool) {
	t.Helper()
	var me *multierror.Error
	if !errors.As(err, &me) {
		t.Fatalf("error %T is not a *multierror.Error: %v", err, err)
	}
	for _, e := range me.Errors {
		if _, ok := e.(*Problem); !ok {
			t.Fatalf("member %T is not a *Problem: %v", e, e)
		}
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(me.Errors) {
		t.Fatalf("%d lines for %d problems:\n%s", len(lines), len(me.Errors), err)
	}
	for _, l := range lines {
		if !lineOK(l) {
			t.Fatalf("problem line %q lacks its place", l)
		}
	}
}

// validLimiter reports whether opts make a Limiter that limits as
// configured: no default fills in for a value the file gave.
func validLimiter(opts ratelimit.Options) bool {
	_, err := ratelimit.New(opts)
	return err == nil && opts.ResponsesPerSecond >= 1 && opts.Burst >= 1 && opts.Slip != 0 &&
		opts.IPv4Prefix >= 1 && opts.IPv6Prefix >= 1
}

// envVars reads KEY=VALUE lines, keeping the variables ApplyEnv reads
// but DNS_CA_FILE.
func envVars(s string) map[string]string {
	vars := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "HOST", "PORT", "DNS_HOST", "DNS_PORT", "DNS_TLS_NAME":
			vars[k] = v
		}
	}
	return vars
}

// checkConfig checks what the package promises of every Config it
// returns: the components take the values as they are.
func checkConfig(t *testing.T, c *Config) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("invalid config returned: "+format, args...)
	}
	if len(c.Listen) == 0 {
		fail("no listen address")
	}
	seen := map[string]bool{}
	for _, ap := range c.Listen {
		if !ap.IsValid() || ap.Port() == 0 || seen[ap.String()] {
			fail("listen address %v invalid, port 0 or repeated", ap)
		}
		seen[ap.String()] = true
	}
	if len(c.Upstreams) == 0 {
		fail("no upstream")
	}
	names := map[string]bool{}
	for i, u := range c.Upstreams {
		if strings.TrimSpace(u.Name) == "" || names[u.Name] {
			fail("upstreams[%d] name %q empty or repeated", i, u.Name)
		}
		names[u.Name] = true
		if u.Host == "" && (!u.Address.IsValid() || u.Address.Port() == 0 || u.Address.Addr().IsUnspecified()) ||
			u.Host != "" && (u.Address.IsValid() || u.Port == 0 || !isHostname(u.Host)) {
			fail("upstreams[%d] address %v, host %q port %d", i, u.Address, u.Host, u.Port)
		}
		if !isHostname(u.TLSName) || strings.HasSuffix(u.TLSName, ".") {
			fail("upstreams[%d] TLS name %q", i, u.TLSName)
		}
		for _, p := range u.SPKIPins {
			if len(p) != 32 {
				fail("upstreams[%d] pin of %d bytes", i, len(p))
			}
		}
	}
	if _, err := parsePolicy(c.Policy); err != nil {
		fail("%v", err)
	}
	if c.Timeout <= 0 || c.QueryTimeout <= c.Timeout || c.HedgeDelay < 0 {
		fail("timeout %v, query_timeout %v, hedge_delay %v", c.Timeout, c.QueryTimeout, c.HedgeDelay)
	}
	if cn := c.Connections; cn.MaxPerUpstream < 1 || cn.IdleTimeout <= 0 || cn.DialTimeout <= 0 {
		fail("connections %+v", cn)
	}
	h := c.Health
	if h.Interval <= 0 || h.DownInterval <= 0 || h.Timeout <= 0 || h.Fall < 1 || h.Rise < 1 {
		fail("health %+v", h)
	}
	if _, ok := dns.IsDomainName(h.ProbeName); !ok || !dns.IsFqdn(h.ProbeName) || dns.TypeToString[h.ProbeType] == "" {
		fail("health probe %q type %d", h.ProbeName, h.ProbeType)
	}
	// The probe, and so its answer, which echoes its question, must
	// come back off the wire.
	if wire, err := new(dns.Msg).SetQuestion(h.ProbeName, h.ProbeType).Pack(); err != nil || new(dns.Msg).Unpack(wire) != nil {
		fail("health probe %q does not pack and unpack", h.ProbeName)
	}
	if len(c.Allow) == 0 {
		fail("empty allow list")
	}
	for _, p := range c.Allow {
		if !p.IsValid() || p != p.Masked() {
			fail("allow prefix %v invalid or not masked", p)
		}
	}
	if tc := c.TCP; tc.IdleTimeout <= 0 || tc.MaxConnections < 1 || tc.MaxPerClient < 1 || tc.MaxInflightPerConn < 1 {
		fail("tcp %+v", tc)
	}
	if c.MaxInflight < 1 || c.MaxInflightPerClient < 1 {
		fail("max_inflight %d, per client %d", c.MaxInflight, c.MaxInflightPerClient)
	}
	if c.MaxUDPSize < minUDPSize || c.MaxUDPSize > maxUDPSize {
		fail("max_udp_size %d", c.MaxUDPSize)
	}
	if opts, _ := c.RateLimit.LimiterOptions(c.Allow); !validLimiter(opts) {
		fail("rate_limit %+v", c.RateLimit)
	}
	if _, err := parseLogFormat(c.Log.Format); err != nil {
		fail("%v", err)
	}
	switch c.Log.Level {
	case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
	default:
		fail("log level %v", c.Log.Level)
	}
}
