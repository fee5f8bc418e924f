package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const (
	// stopTimeout bounds dotproxy's graceful stop: its own grace period
	// for queries in flight is 5s.
	stopTimeout = 20 * time.Second
	// clientTimeout bounds one query of the Go client; dotproxy answers
	// within its query_timeout, at most a few seconds in these tests.
	clientTimeout = 10 * time.Second
)

// envVars are the variables of the original daemon that dotproxy reads.
// They are removed from the environment dotproxy inherits, so that a
// stray HOST (set by some shells and CI systems) moves no listener.
var envVars = []string{"HOST", "PORT", "DNS_HOST", "DNS_PORT", "DNS_TLS_NAME", "DNS_CA_FILE"}

// upstreamConf is one entry of dotproxy's upstreams.
type upstreamConf struct {
	name   string
	addr   netip.AddrPort
	caFile string
	// url, when set, is the address instead of addr: an https:// (DoH)
	// upstream.
	url string
	// fallback puts the upstream in the tier used only when no other is
	// usable.
	fallback bool
}

// address is u's address as the configuration spells it.
func (u upstreamConf) address() string {
	if u.url != "" {
		return u.url
	}
	return u.addr.String()
}

// proxyConfig is what a test chooses of dotproxy's configuration; listen
// is filled in, and the log is debug JSON, which the tests read.
type proxyConfig struct {
	upstreams []upstreamConf
	extra     string // more top-level YAML
	// bin is the binary to run; "" is dotproxyBin, built with -race when
	// the tests run with it.
	bin string
	// logLevel is the log's level; "" is debug.
	logLevel string
	// env holds more NAME=value pairs for dotproxy's environment.
	env []string
	// cache turns the answer cache on. Off by default here, so that a
	// repeated name crosses to an upstream as the failover tests need;
	// extra may configure it instead.
	cache bool
}

func (c proxyConfig) yaml(listen netip.AddrPort) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: [%q]\nupstreams:\n", listen)
	for _, u := range c.upstreams {
		fmt.Fprintf(&b, "  - name: %s\n    address: %q\n    tls_name: %s\n    ca_file: %q\n",
			u.name, u.address(), tlsName, u.caFile)
		if u.fallback {
			b.WriteString("    fallback: true\n")
		}
	}
	level := c.logLevel
	if level == "" {
		level = "debug"
	}
	fmt.Fprintf(&b, "log: {level: %s, format: json}\n", level)
	if !strings.Contains(c.extra, "admin:") {
		b.WriteString("admin: \"\"\n") // 127.0.0.1:8053 is one port for all the tests
	}
	if !c.cache && !strings.Contains(c.extra, "cache:") {
		b.WriteString("cache: {enabled: false}\n")
	}
	b.WriteString(c.extra)
	return b.String()
}

// dotproxy is the binary under test, running.
type dotproxy struct {
	t      *testing.T
	addr   netip.AddrPort // UDP and TCP
	proc   *process
	config string // its config file; "" when configured by the environment
}

// startDotproxy runs dotproxy on cfg, listening on a free port of
// 127.0.0.1, until the test ends.
func startDotproxy(t *testing.T, cfg proxyConfig) *dotproxy {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	bin := cfg.bin
	if bin == "" {
		bin = dotproxyBin
	}
	d := launchBin(t, bin, func(listen netip.AddrPort) ([]string, []string) {
		if err := os.WriteFile(path, []byte(cfg.yaml(listen)), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"-config", path}, append(baseEnv(), cfg.env...)
	})
	d.config = path
	return d
}

// startDotproxyEnv runs dotproxy without -config, configured by vars and
// the environment variables HOST and PORT, which launch sets.
func startDotproxyEnv(t *testing.T, vars ...string) *dotproxy {
	t.Helper()
	return launch(t, func(listen netip.AddrPort) ([]string, []string) {
		env := append(baseEnv(), "HOST="+listen.Addr().String(), fmt.Sprint("PORT=", listen.Port()))
		return nil, append(env, vars...)
	})
}

// baseEnv is the test's environment without dotproxy's variables.
func baseEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return slices.Contains(envVars, name)
	})
}

// launch is launchBin for the binary TestMain built.
func launch(t *testing.T, setup func(listen netip.AddrPort) (args, env []string)) *dotproxy {
	t.Helper()
	return launchBin(t, dotproxyBin, setup)
}

// launchBin starts bin with the arguments and environment setup gives
// for a listen address and waits until it answers there over UDP and TCP,
// trying other ports if the one picked was taken meanwhile. When the test
// ends it stops dotproxy with SIGTERM and checks that it exits with status
// 0 and reported no data race.
func launchBin(t *testing.T, bin string, setup func(listen netip.AddrPort) (args, env []string)) *dotproxy {
	t.Helper()
	short(t)
	for attempt := 1; ; attempt++ {
		d := &dotproxy{t: t, addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t, "127.0.0.1", true))}
		args, env := setup(d.addr)
		d.proc = startProcess(t, env, "", bin, args...)
		err := waitReady(d.proc, d.ready)
		if err == nil {
			t.Cleanup(d.stop)
			return d
		}
		if !strings.Contains(d.proc.out.String(), "address already in use") || attempt == startAttempts {
			t.Fatalf("starting dotproxy on %v: %v\n%s", d.addr, err, d.proc.out)
		}
		t.Logf("dotproxy could not bind %v, trying another port", d.addr)
	}
}

// ready sends a NOTIFY over UDP and TCP: any reply shows that dotproxy
// serves, whatever the state of its upstreams, which NOTIFY never reaches.
func (d *dotproxy) ready() error {
	for _, network := range []string{"udp", "tcp"} {
		m := new(dns.Msg).SetNotify("ready.invalid.")
		c := &dns.Client{Net: network, Timeout: time.Second}
		if _, _, err := c.Exchange(m, d.addr.String()); err != nil {
			return err
		}
	}
	return nil
}

func (d *dotproxy) stop() {
	t := d.t
	d.proc.signal(syscall.SIGTERM)
	code, ok := d.proc.waitFor(stopTimeout)
	out := d.proc.out.String()
	switch {
	case !ok:
		t.Errorf("dotproxy did not exit within %v of SIGTERM", stopTimeout)
	case code != 0:
		t.Errorf("dotproxy exited with status %d after SIGTERM, want 0 (%v)", code, d.proc.err)
	}
	if strings.Contains(out, "WARNING: DATA RACE") {
		t.Errorf("dotproxy reported a data race")
	}
	if t.Failed() {
		t.Logf("dotproxy output:\n%s", out)
	}
}

// query asks dotproxy with the Go client, over network "udp" or "tcp".
func (d *dotproxy) query(network, name string, qtype uint16) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: clientTimeout}
	r, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, qtype), d.addr.String())
	if err != nil {
		return nil, fmt.Errorf("%s query for %s over %s: %w", dns.TypeToString[qtype], name, network, err)
	}
	return r, nil
}

// digRun runs dig against dotproxy: one try, so that a lost answer is
// not hidden by a retry.
func (d *dotproxy) digRun(t *testing.T, args ...string) result {
	t.Helper()
	dig := tool(t, "dig", "dnsutils")
	args = append([]string{"@" + d.addr.Addr().String(), "-p", fmt.Sprint(d.addr.Port()), "+tries=1", "+timeout=10"}, args...)
	res := run(t, "", nil, dig, args...)
	if res.code != 0 {
		t.Fatalf("dig %q: status %d\n%s%s", args, res.code, res.stdout, res.stderr)
	}
	return res
}

// dig is digRun for one query, returning its answer and dig's output.
func (d *dotproxy) dig(t *testing.T, args ...string) (*answer, string) {
	t.Helper()
	out := d.digRun(t, args...).stdout
	answers := parseAnswers(out)
	if len(answers) != 1 {
		t.Fatalf("dig %q: %d answers in its output, want 1:\n%s", args, len(answers), out)
	}
	return answers[0], out
}

// logEntry is one line of dotproxy's JSON log.
type logEntry map[string]any

// get returns the value of key as text, "" if absent.
func (e logEntry) get(key string) string {
	v, ok := e[key]
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

// is reports whether e has the message msg and the given key, value pairs.
func (e logEntry) is(msg string, kv ...string) bool {
	if e.get("msg") != msg {
		return false
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if e.get(kv[i]) != kv[i+1] {
			return false
		}
	}
	return true
}

// log returns the JSON lines dotproxy has logged so far.
func (d *dotproxy) log() []logEntry {
	var entries []logEntry
	for line := range strings.Lines(d.proc.out.String()) {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil {
			entries = append(entries, e)
		}
	}
	return entries
}

// waitLog waits, at most timeout, for a log line after the first from
// that matches msg and kv, and returns its index.
func (d *dotproxy) waitLog(timeout time.Duration, from int, msg string, kv ...string) int {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		log := d.log()
		for i := from; i < len(log); i++ {
			if log[i].is(msg, kv...) {
				return i
			}
		}
		if time.Now().After(deadline) || d.proc.exited() {
			d.t.Fatalf("no log line msg=%q %q within %v", msg, kv, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
