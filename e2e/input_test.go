package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// defaultConfigPath is what dotproxy reads when given no -config.
const defaultConfigPath = "/etc/dotproxy/config.yaml"

// TestEnvironmentVariables: the original daemon's variables alone, with
// no config file, make a working proxy; a companion without DNS_HOST is a
// configuration error.
func TestEnvironmentVariables(t *testing.T) {
	tool(t, "dig", "dnsutils")
	ub := startUnbound(t, newPKI(t), "127.0.0.4")
	if fileExists(defaultConfigPath) {
		// Its listen and upstreams are overridden; the rest applies.
		t.Logf("note: %s exists on this machine and is read", defaultConfigPath)
	}
	d := startDotproxyEnv(t,
		"DNS_HOST="+ub.addr.Addr().String(),
		fmt.Sprint("DNS_PORT=", ub.addr.Port()),
		"DNS_TLS_NAME="+tlsName,
		"DNS_CA_FILE="+ub.pki.caFile)

	for _, args := range [][]string{{"example.com"}, {"+tcp", "example.com"}} {
		a, out := d.dig(t, args...)
		if a.status != "NOERROR" || !slices.Equal(a.data("A"), []string{exampleIP}) {
			t.Errorf("dig %q: status %s, A %q; want NOERROR, [%s]\n%s", args, a.status, a.data("A"), exampleIP, out)
		}
	}
	// The one upstream is named after DNS_HOST (the log is text here).
	want := fmt.Sprintf("msg=upstream upstream=%s addr=%s ", ub.addr.Addr(), ub.addr)
	if out := d.proc.out.String(); !strings.Contains(out, want) {
		t.Errorf("log lacks %q:\n%s", want, out)
	}

	t.Run("DNS_PORT without DNS_HOST", func(t *testing.T) {
		res := run(t, "", append(baseEnv(), "DNS_PORT=853"), dotproxyBin, "-check")
		want := "dotproxy: config errors:\nenvironment: DNS_PORT: set without DNS_HOST\n"
		if res.code != 2 || res.stderr != want {
			t.Errorf("status %d, stderr %q; want 2, %q", res.code, res.stderr, want)
		}
	})
}

// TestRefusedAndNotImplemented: what dotproxy must not forward. A client
// outside allow gets REFUSED, and nothing goes upstream; so does a zone
// transfer; a NOTIFY gets NOTIMP.
func TestRefusedAndNotImplemented(t *testing.T) {
	tool(t, "dig", "dnsutils")
	ub := startUnbound(t, newPKI(t), "127.0.0.2")
	ups := []upstreamConf{ub.upstream("unbound")}

	t.Run("client not allowed", func(t *testing.T) {
		d := startDotproxy(t, proxyConfig{upstreams: ups, extra: "allow: [\"10.0.0.0/8\"]\n"})
		for _, args := range [][]string{{"example.com"}, {"+tcp", "example.com"}} {
			a, out := d.dig(t, args...)
			if a.status != "REFUSED" || len(a.records) != 0 {
				t.Errorf("dig %q from 127.0.0.1: status %s, %d records; want REFUSED, none\n%s", args, a.status, len(a.records), out)
			}
			d.waitLog(logWait, 0, "answer returned", "id", a.id, "rcode", "REFUSED")
		}
		for _, e := range d.log() {
			if e.is("query sent", "qname", "example.com.") {
				t.Errorf("a refused client's query went upstream: %v", e)
			}
		}
	})

	d := startDotproxy(t, proxyConfig{upstreams: ups})

	t.Run("AXFR", func(t *testing.T) {
		out := d.digRun(t, "example.com", "AXFR").stdout
		if !strings.Contains(out, "; Transfer failed.") {
			t.Errorf("dig AXFR did not fail:\n%s", out)
		}
		d.waitLog(logWait, 0, "answer returned", "transport", "tcp", "qtype", "AXFR", "rcode", "REFUSED")

		// dig does not print the rcode of a failed transfer; ask directly.
		r, err := d.query("tcp", "example.com.", dns.TypeAXFR)
		if err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 {
			t.Errorf("AXFR over TCP: want REFUSED and no records, got\n%v", r)
		}
	})

	t.Run("NOTIFY", func(t *testing.T) {
		for _, args := range [][]string{{"+opcode=notify", "example.com", "SOA"}, {"+tcp", "+opcode=notify", "example.com", "SOA"}} {
			a, out := d.dig(t, args...)
			if a.status != "NOTIMP" || !strings.Contains(out, "opcode: NOTIFY") {
				t.Errorf("dig %q: status %s; want NOTIMP to opcode NOTIFY\n%s", args, a.status, out)
			}
		}
	})
}

// TestCheckAndVersion: -check reports every problem of a bad file with
// its file and line and exits 2, as for an empty one, accepts a good file, and -version prints
// the version stamped at build time.
func TestCheckAndVersion(t *testing.T) {
	short(t)
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("bad.yaml", `listen: ["127.0.0.1:5353"]
bogus: 1
upstreams:
  - name: nameless
    address: "127.0.0.1:853"
`)
	write("good.yaml", `listen: ["127.0.0.1:5353"]
upstreams:
  - name: local
    address: "127.0.0.1:853"
    tls_name: dns.test
`)

	t.Run("bad", func(t *testing.T) {
		res := run(t, dir, baseEnv(), dotproxyBin, "-check", "-config", "bad.yaml")
		want := []string{"bad.yaml:2: bogus: ", "bad.yaml:4: upstreams[0].tls_name: "}
		lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
		ok := res.code == 2 && len(lines) == 3 && lines[0] == "dotproxy: config errors:"
		for i, w := range want {
			ok = ok && strings.HasPrefix(lines[min(i+1, len(lines)-1)], w)
		}
		if !ok {
			t.Errorf("status %d, stderr:\n%s\nwant status 2, the header and lines starting %q", res.code, res.stderr, want)
		}
	})

	write("empty.yaml", "# being edited\n")
	t.Run("empty", func(t *testing.T) {
		res := run(t, dir, baseEnv(), dotproxyBin, "-check", "-config", "empty.yaml")
		if want := "empty.yaml:1: the file is empty"; res.code != 2 || !strings.Contains(res.stderr, want) {
			t.Errorf("status %d, stderr:\n%s\nwant status 2 and %q", res.code, res.stderr, want)
		}
	})

	t.Run("good", func(t *testing.T) {
		res := run(t, dir, baseEnv(), dotproxyBin, "-check", "-config", "good.yaml")
		if want := "good.yaml: OK"; res.code != 0 || !strings.HasPrefix(res.stdout, want) {
			t.Errorf("status %d, stdout %q, stderr %q; want 0, %q...", res.code, res.stdout, res.stderr, want)
		}
	})

	t.Run("version", func(t *testing.T) {
		res := run(t, dir, baseEnv(), dotproxyBin, "-version")
		if want := "dotproxy " + builtVersion + "\n"; res.code != 0 || res.stdout != want {
			t.Errorf("status %d, stdout %q; want 0, %q", res.code, res.stdout, want)
		}
	})
}
