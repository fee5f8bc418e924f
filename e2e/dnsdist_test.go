package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/miekg/dns"
)

// dnsdist is a dnsdist process serving DNS over HTTPS on loopback in
// front of a plain DNS backend.
type dnsdist struct {
	addr netip.AddrPort // the DoH frontend
	pki  *pki
	proc *process
}

// startDnsdistDoH starts dnsdist with a DoH frontend (addDOHLocal, HTTP/2
// with ALPN) on a free port of ip, forwarding to the plain DNS server at
// backend, and stops it when the test ends. dnsdist also needs a plain
// listener, which gets a free port of ip too, never its default
// 127.0.0.1:53.
func startDnsdistDoH(t *testing.T, p *pki, ip string, backend netip.AddrPort) *dnsdist {
	t.Helper()
	bin := tool(t, "dnsdist", "dnsdist")
	conf := filepath.Join(t.TempDir(), "dnsdist.conf")
	for attempt := 1; ; attempt++ {
		plain := netip.AddrPortFrom(netip.MustParseAddr(ip), freePort(t, ip, true))
		dd := &dnsdist{addr: netip.AddrPortFrom(plain.Addr(), freePort(t, ip, false)), pki: p}
		lines := []string{
			// No security poll: it is a DNS query to the system's resolver.
			"setSecurityPollSuffix('')",
			fmt.Sprintf("setLocal('%s')", plain),
			fmt.Sprintf("addDOHLocal('%s', '%s', '%s', '%s')", dd.addr, p.certFile, p.keyFile, dohPath),
			fmt.Sprintf("newServer({address='%s'})", backend),
		}
		if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		dd.proc = startProcess(t, nil, "", bin, "--supervised", "--disable-syslog", "-C", conf)
		t.Cleanup(func() {
			dd.proc.signal(syscall.SIGKILL)
			dd.proc.wait()
			if t.Failed() {
				t.Logf("dnsdist %v output:\n%s", dd.addr, dd.proc.out)
			}
		})
		err := waitReady(dd.proc, func() error {
			r, err := dohExchange(p.client, dohURL(dd.addr), new(dns.Msg).SetQuestion("example.com.", dns.TypeA))
			if err == nil && r.Rcode != dns.RcodeSuccess {
				err = fmt.Errorf("answered %s", dns.RcodeToString[r.Rcode])
			}
			return err
		})
		if err == nil {
			return dd
		}
		if !strings.Contains(dd.proc.out.String(), "in use") || attempt == startAttempts {
			t.Fatalf("starting dnsdist on %v: %v\n%s", dd.addr, err, dd.proc.out)
		}
		t.Logf("dnsdist could not bind %v or %v, trying other ports", plain, dd.addr)
	}
}

// upstream describes dd's DoH frontend for dotproxy's configuration.
func (dd *dnsdist) upstream(name string) upstreamConf {
	return upstreamConf{name: name, addr: dd.addr, caFile: dd.pki.caFile, url: dohURL(dd.addr)}
}
