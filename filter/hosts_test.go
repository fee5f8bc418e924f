package filter

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestHostsFiles: names from a hosts file and a dnsmasq lease file are
// answered as local records, with PTRs; a local record of the same name
// wins; a bad line is logged with its file and line and the rest used;
// a new lease is answered once the file changes, without a restart.
func TestHostsFiles(t *testing.T) {
	dir := t.TempDir()
	hostsFile := filepath.Join(dir, "hosts")
	leases := filepath.Join(dir, "dhcp.leases")
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(hostsFile, "192.168.1.10 nas nas.home.arpa\nnot a line\n192.168.1.2 dotproxy\n")
	write(leases, "0 aa:bb:cc:dd:ee:01 192.168.1.23 printer *\n")
	f, rec := newFilter(t, Options{
		LocalRecords:  map[string][]netip.Addr{"dotproxy": {netip.MustParseAddr("192.168.1.3")}},
		HostsFiles:    []string{hostsFile, leases},
		HostsDomain:   "lan",
		HostsInterval: 10 * time.Millisecond,
	})
	f.Start(context.Background())
	up := &upstream{}
	first := func(name string, qtype uint16) string {
		t.Helper()
		m := ask(t, f, up, netip.Addr{}, name, qtype)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 || !m.Authoritative {
			return dns.RcodeToString[m.Rcode]
		}
		fields := strings.Fields(m.Answer[0].String())
		return fields[len(fields)-1]
	}
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"nas", dns.TypeA, "192.168.1.10"},
		{"nas.lan", dns.TypeA, "192.168.1.10"},
		{"nas.home.arpa", dns.TypeA, "192.168.1.10"},
		{"printer.lan", dns.TypeA, "192.168.1.23"},
		{"23.1.168.192.in-addr.arpa", dns.TypePTR, "printer."}, // then printer.lan.
		{"dotproxy", dns.TypeA, "192.168.1.3"},                 // the local record wins
	} {
		if got := first(tc.name, tc.qtype); got != tc.want {
			t.Errorf("%s %s: got %s, want %s", tc.name, dns.TypeToString[tc.qtype], got, tc.want)
		}
	}
	if n := up.queries.Load(); n != 0 {
		t.Errorf("%d names from the files went upstream", n)
	}
	found := false
	for _, r := range rec.Find("hosts file: line skipped") {
		found = found || r["file"].String() == hostsFile && r["line"].Int64() == 2
	}
	if !found {
		t.Error("the bad line was not logged with its file and line")
	}

	// A new lease: answered within the interval, no restart.
	write(leases, "0 aa:bb:cc:dd:ee:01 192.168.1.23 printer *\n0 aa:bb:cc:dd:ee:02 192.168.1.24 tv *\n")
	deadline := time.Now().Add(10 * time.Second)
	for first("tv.lan", dns.TypeA) != "192.168.1.24" {
		if time.Now().After(deadline) {
			t.Fatal("the new lease was not answered within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
