package e2e

import (
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

// routerIP is the loopback address dnsmasq listens on, standing in for
// the house's router.
const routerIP = "127.0.0.53"

// dnsmasq is a dnsmasq process serving LAN names in plain DNS on
// loopback, as a home router does.
type dnsmasq struct {
	addr netip.AddrPort
	proc *process
}

// startDnsmasq starts dnsmasq on a free port of routerIP serving:
// nas.lan and the single-label nas (192.168.1.10), printer.lan
// (192.168.1.20) and their PTRs; lan and 168.192.in-addr.arpa are its
// own, so that other names there are NXDOMAIN. It forwards nothing;
// extra are more of its options. It is stopped when the test ends.
func startDnsmasq(t *testing.T, extra ...string) *dnsmasq {
	t.Helper()
	bin := tool(t, "dnsmasq", "dnsmasq")
	for attempt := 1; ; attempt++ {
		d := &dnsmasq{addr: netip.AddrPortFrom(netip.MustParseAddr(routerIP), freePort(t, routerIP, true))}
		args := append([]string{
			"--no-daemon", "--conf-file=/dev/null", "--pid-file=", "--user=root",
			"--listen-address=" + routerIP, "--bind-interfaces", fmt.Sprint("--port=", d.addr.Port()),
			"--no-resolv", "--no-hosts", "--log-queries", "--log-facility=-",
			"--local=/lan/", "--local=/168.192.in-addr.arpa/",
			"--host-record=nas.lan,nas,192.168.1.10",
			"--host-record=printer.lan,192.168.1.20",
		}, extra...)
		d.proc = startProcess(t, nil, "", bin, args...)
		err := waitReady(d.proc, func() error {
			c := &dns.Client{Net: "udp", Timeout: time.Second}
			r, _, err := c.Exchange(new(dns.Msg).SetQuestion("nas.lan.", dns.TypeA), d.addr.String())
			if err == nil && r.Rcode != dns.RcodeSuccess {
				err = fmt.Errorf("answered %s", dns.RcodeToString[r.Rcode])
			}
			return err
		})
		if err == nil {
			t.Cleanup(func() {
				d.proc.signal(syscall.SIGKILL)
				d.proc.wait()
				if t.Failed() {
					t.Logf("dnsmasq output:\n%s", d.proc.out)
				}
			})
			return d
		}
		if !strings.Contains(d.proc.out.String(), "in use") || attempt == startAttempts {
			t.Fatalf("starting dnsmasq on %v: %v\n%s", d.addr, err, d.proc.out)
		}
	}
}

// TestRouterForwarding drives the real binary with dig: with router: set
// to dnsmasq, LAN names, single-label names and reverse lookups of LAN
// addresses come from dnsmasq; public names from the DoT upstream, whose
// answer pointing into the house is refused (EDE 15); printer.local
// (mDNS) is answered NXDOMAIN without asking anyone; and with dnsmasq
// gone a LAN name fails, never reaching the upstream.
func TestRouterForwarding(t *testing.T) {
	tool(t, "dig", "dnsutils")
	router := startDnsmasq(t)
	ub := startUnbound(t, newPKI(t), "127.0.0.2",
		`local-data: "evil.example.com. 300 IN A 192.168.1.1"`)
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{ub.upstream("unbound")},
		extra:     fmt.Sprintf("router: %q\ntimeout: 300ms\nquery_timeout: 2s\n", router.addr),
	})
	for _, tc := range []struct {
		args   []string
		status string
		rtype  string
		data   []string
		ede    string
	}{
		{[]string{"nas.lan", "A"}, "NOERROR", "A", []string{"192.168.1.10"}, ""},
		{[]string{"PRINTER.LAN", "A", "+tcp"}, "NOERROR", "A", []string{"192.168.1.20"}, ""},
		{[]string{"nas", "A"}, "NOERROR", "A", []string{"192.168.1.10"}, ""},
		{[]string{"-x", "192.168.1.20"}, "NOERROR", "PTR", []string{"printer.lan."}, ""},
		{[]string{"gone.lan", "A"}, "NXDOMAIN", "", nil, ""},
		{[]string{"printer.local", "A"}, "NXDOMAIN", "", nil, ""},
		{[]string{"example.com", "A"}, "NOERROR", "A", []string{exampleIP}, ""},
		{[]string{"evil.example.com", "A"}, "REFUSED", "", nil, "15"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			a, out := d.dig(t, tc.args...)
			if a.status != tc.status || a.ede != tc.ede || tc.rtype != "" && !slices.Equal(a.data(tc.rtype), tc.data) {
				t.Errorf("status %s, EDE %q, %s %q; want %s, EDE %q, %q\n%s", a.status, a.ede, tc.rtype, a.data(tc.rtype),
					tc.status, tc.ede, tc.data, out)
			}
		})
	}
	if out := router.proc.out.String(); strings.Contains(out, "example.com") {
		t.Errorf("dnsmasq was asked a public name:\n%s", out)
	}

	// With the router gone, LAN names fail and stay in the house.
	router.proc.signal(syscall.SIGKILL)
	router.proc.wait()
	a, out := d.dig(t, "other.lan", "A")
	if a.status != "SERVFAIL" || a.ede == "" {
		t.Errorf("router down: status %s, EDE %q; want SERVFAIL with an EDE\n%s", a.status, a.ede, out)
	}
	for _, e := range d.log() {
		q := strings.ToLower(e.get("qname"))
		lan := strings.HasSuffix(q, ".lan.") || q == "nas." || strings.HasSuffix(q, ".in-addr.arpa.")
		if lan && e.get("upstream") == "unbound" {
			t.Errorf("a LAN name went to the upstream: %v", e)
		}
	}
}

// TestLeaseFile: names from a dnsmasq lease file are answered by the
// binary, with PTRs, and a lease added to the file is answered without a
// restart or SIGHUP.
func TestLeaseFile(t *testing.T) {
	tool(t, "dig", "dnsutils")
	leases := filepath.Join(t.TempDir(), "dhcp.leases")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(leases, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("0 aa:bb:cc:dd:ee:01 192.168.1.23 printer 01:aa:bb:cc:dd:ee:01\n")
	ub := startUnbound(t, newPKI(t), "127.0.0.2")
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{ub.upstream("unbound")},
		extra:     fmt.Sprintf("hosts_files: [%q]\nhosts_domain: lan\n", leases),
	})
	if a, out := d.dig(t, "printer.lan", "A"); a.status != "NOERROR" || !slices.Equal(a.data("A"), []string{"192.168.1.23"}) {
		t.Errorf("printer.lan: status %s, A %q\n%s", a.status, a.data("A"), out)
	}
	if a, out := d.dig(t, "-x", "192.168.1.23"); !slices.Contains(a.data("PTR"), "printer.lan.") {
		t.Errorf("-x 192.168.1.23: PTR %q\n%s", a.data("PTR"), out)
	}
	write("0 aa:bb:cc:dd:ee:01 192.168.1.23 printer *\n0 aa:bb:cc:dd:ee:02 192.168.1.24 tv *\n")
	deadline := time.Now().Add(15 * time.Second)
	for {
		a, out := d.dig(t, "tv.lan", "A")
		if slices.Equal(a.data("A"), []string{"192.168.1.24"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new lease is not answered after 15s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClientNamesFromRouter: the binary names its client by asking the
// router (dnsmasq) for the PTR of its address, through the forward rule
// for the reverse zone, and then filters it by the group that names it;
// the first queries may go unnamed. dig asks from 127.0.0.1, whose
// reverse zone stands in for the house's.
func TestClientNamesFromRouter(t *testing.T) {
	tool(t, "dig", "dnsutils")
	router := startDnsmasq(t, "--host-record=laptop.lan,127.0.0.1")
	games := filepath.Join(t.TempDir(), "games.txt")
	if err := os.WriteFile(games, []byte("games.example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ub := startUnbound(t, newPKI(t), "127.0.0.2")
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{ub.upstream("unbound")},
		extra: fmt.Sprintf("forward:\n  - domains: [127.in-addr.arpa]\n    servers: [%q]\nhosts_domain: lan\n"+
			"filter:\n  groups:\n    - name: laptop\n      clients: [laptop]\n      blocklists: [%q]\n", router.addr, games),
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		a, out := d.dig(t, "games.example.com", "A")
		if a.status == "NXDOMAIN" && a.ede == "15" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("games.example.com not blocked for the group named laptop after 15s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := router.proc.out.String(); !strings.Contains(out, "1.0.0.127.in-addr.arpa") {
		t.Errorf("dnsmasq was not asked for the client's name:\n%s", out)
	}
}
