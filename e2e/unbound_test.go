package e2e

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// tlsName is the name in every upstream certificate of these tests.
const tlsName = "dns.test"

const (
	// readyTimeout bounds the wait for a started process to answer.
	readyTimeout = 20 * time.Second
	// startAttempts bounds the retries when a free port was taken between
	// picking it and the process binding it.
	startAttempts = 5
)

// The names every Unbound serves, from its local-data.
const (
	exampleIP = "192.0.2.10" // example.com
	bigName   = "big.example.com."
	bigCount  = 20 // TXT records of bigName: about 2 KB, more than 512 and than 1232
)

// letterIPs maps the names [a-d].example.com to their addresses.
var letterIPs = map[string]string{
	"a.example.com.": "192.0.2.1",
	"b.example.com.": "192.0.2.2",
	"c.example.com.": "192.0.2.3",
	"d.example.com.": "192.0.2.4",
}

// bigText is the text of bigName's i-th TXT record.
func bigText(i int) string { return fmt.Sprintf("record %02d %s", i, strings.Repeat("x", 90)) }

// localData is what every Unbound answers: the test names, and ". NS",
// which dotproxy's health probe asks.
func localData() []string {
	data := []string{
		`local-zone: "example.com." static`,
		`local-data: "example.com. 300 IN A ` + exampleIP + `"`,
	}
	for name, ip := range letterIPs {
		data = append(data, fmt.Sprintf(`local-data: "%s 300 IN A %s"`, name, ip))
	}
	for i := range bigCount {
		data = append(data, fmt.Sprintf(`local-data: '%s 300 IN TXT "%s"'`, bigName, bigText(i)))
	}
	return append(data,
		`local-zone: "." static`,
		`local-data: ". 300 IN NS a.root-servers.net."`)
}

// pki is the CA and the upstream certificate of one test, as files for
// Unbound and dotproxy.
type pki struct {
	caFile, certFile, keyFile string
	client                    *tls.Config // trusts the CA, for readiness queries
}

func newPKI(t *testing.T) *pki {
	ca := dottest.NewCA(t)
	leaf := ca.Leaf(t, tlsName)
	caFile, certFile, keyFile := ca.WriteFiles(t, t.TempDir(), &leaf)
	return &pki{caFile, certFile, keyFile, &tls.Config{RootCAs: ca.Pool, ServerName: tlsName}}
}

// unbound is an Unbound process serving DNS over TLS, or over HTTPS, on
// loopback.
type unbound struct {
	t    *testing.T
	bin  string
	addr netip.AddrPort
	conf string
	pki  *pki
	doh  bool       // DNS over HTTPS at dohPath instead of DNS over TLS
	proc *process   // the latest run
	runs []*process // every run, for the output of a failed test
}

// startUnbound starts Unbound on a free port of ip serving localData and
// extra lines of server configuration over TLS, and stops it when the
// test ends.
func startUnbound(t *testing.T, p *pki, ip string, extra ...string) *unbound {
	t.Helper()
	return launchUnbound(t, p, ip, false, extra)
}

// startUnboundDoH is startUnbound serving DNS over HTTPS (HTTP/2, the
// only DoH Unbound has; Debian builds it with nghttp2) instead of over
// TLS.
func startUnboundDoH(t *testing.T, p *pki, ip string, extra ...string) *unbound {
	t.Helper()
	return launchUnbound(t, p, ip, true, extra)
}

// launchUnbound is startUnbound or, with doh, startUnboundDoH.
func launchUnbound(t *testing.T, p *pki, ip string, doh bool, extra []string) *unbound {
	t.Helper()
	u := &unbound{t: t, bin: tool(t, "unbound", "unbound"), pki: p, doh: doh}
	dir := t.TempDir()
	u.conf = filepath.Join(dir, "unbound.conf")
	t.Cleanup(func() {
		// Continue it first, in case the test left it stopped.
		u.signal(syscall.SIGCONT)
		u.kill()
		if t.Failed() {
			for i, p := range u.runs {
				t.Logf("unbound %v, run %d, output:\n%s", u.addr, i+1, p.out)
			}
		}
	})
	for attempt := 1; ; attempt++ {
		u.addr = netip.AddrPortFrom(netip.MustParseAddr(ip), freePort(t, ip, false))
		if err := os.WriteFile(u.conf, []byte(u.config(dir, extra)), 0o600); err != nil {
			t.Fatal(err)
		}
		err := u.start()
		if err == nil {
			return u
		}
		if !errors.Is(err, errBind) || attempt == startAttempts {
			t.Fatalf("starting unbound on %v: %v\n%s", u.addr, err, u.proc.out)
		}
		t.Logf("unbound could not bind %v, trying another port", u.addr)
	}
}

func (u *unbound) config(dir string, extra []string) string {
	lines := []string{
		"server:",
		fmt.Sprintf("interface: %s@%d", u.addr.Addr(), u.addr.Port()),
		u.service(),
		"tls-service-key: " + u.pki.keyFile,
		"tls-service-pem: " + u.pki.certFile,
		// TCP only: no UDP socket to collide with, and no SO_REUSEPORT,
		// under which a second Unbound could share our port unnoticed.
		"do-udp: no",
		"so-reuseport: no",
		"num-threads: 1",
		"incoming-num-tcp: 100",
		"do-daemonize: no",
		`username: ""`,
		`chroot: ""`,
		"directory: " + dir,
		`pidfile: ""`,
		"use-syslog: no",
		`logfile: ""`,
		"verbosity: 1",
		"access-control: 127.0.0.0/8 allow",
	}
	if u.doh {
		lines = append(lines, "http-endpoint: "+dohPath)
	}
	lines = append(lines, localData()...)
	lines = append(lines, extra...)
	lines = append(lines, "remote-control:", "control-enable: no")
	return strings.Join(lines, "\n  ") + "\n"
}

// service is the line that makes u's port the TLS or the HTTPS one: Unbound gives a
// listener the service whose port it has.
func (u *unbound) service() string {
	if u.doh {
		return fmt.Sprintf("https-port: %d", u.addr.Port())
	}
	return fmt.Sprintf("tls-port: %d", u.addr.Port())
}

// errBind is a start that failed because the port was taken.
var errBind = errors.New("address in use")

// start runs Unbound on u.conf and waits until it answers over TLS or
// HTTPS.
func (u *unbound) start() error {
	u.proc = startProcess(u.t, nil, "", u.bin, "-d", "-c", u.conf)
	u.runs = append(u.runs, u.proc)
	err := waitReady(u.proc, func() error {
		q := new(dns.Msg).SetQuestion(".", dns.TypeNS)
		var r *dns.Msg
		var err error
		if u.doh {
			r, err = dohExchange(u.pki.client, dohURL(u.addr), q)
		} else {
			c := &dns.Client{Net: "tcp-tls", TLSConfig: u.pki.client, Timeout: 2 * time.Second}
			r, _, err = c.Exchange(q, u.addr.String())
		}
		if err == nil && r.Rcode != dns.RcodeSuccess {
			err = fmt.Errorf("answered %s", dns.RcodeToString[r.Rcode])
		}
		return err
	})
	if err != nil && strings.Contains(u.proc.out.String(), "could not open ports") {
		return fmt.Errorf("%w: %w", errBind, err)
	}
	return err
}

// upstream describes u for dotproxy's configuration.
func (u *unbound) upstream(name string) upstreamConf {
	c := upstreamConf{name: name, addr: u.addr, caFile: u.pki.caFile}
	if u.doh {
		c.url = dohURL(u.addr)
	}
	return c
}

// kill ends Unbound at once, as a crash would, and waits for it to exit.
func (u *unbound) kill() {
	u.signal(syscall.SIGKILL)
	u.proc.wait()
}

// restart starts Unbound again on the port it had, retrying while the
// port is still held (briefly, by the kernel) after a kill.
func (u *unbound) restart() {
	u.t.Helper()
	for attempt := 1; ; attempt++ {
		err := u.start()
		if err == nil {
			return
		}
		if !errors.Is(err, errBind) || attempt == startAttempts {
			u.t.Fatalf("restarting unbound on %v: %v\n%s", u.addr, err, u.proc.out)
		}
		time.Sleep(500 * time.Millisecond) // let the kernel release the port
	}
}

// signal sends sig to Unbound if it is running.
func (u *unbound) signal(sig syscall.Signal) {
	if u.proc != nil {
		u.proc.signal(sig)
	}
}

// freePort returns a port that was free on ip just now, for TCP and, if
// udp, for UDP too. Whoever uses it must retry if it was taken since.
func freePort(t *testing.T, ip string, udp bool) uint16 {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("finding a free port on %s: %v", ip, err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ok := true
		if udp {
			pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, fmt.Sprint(port)))
			if ok = err == nil; ok {
				pc.Close()
			}
		}
		ln.Close()
		if ok {
			return uint16(port)
		}
	}
	t.Fatalf("no port free for both TCP and UDP on %s", ip)
	return 0
}
