package filter

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/clients"
)

// namer is a Namer whose names a test sets.
type namer struct {
	mu    sync.Mutex
	names map[netip.Addr]string
}

func (n *namer) ClientName(addr netip.Addr) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.names[addr]
}

// TestGroupsByName: a group's names match the client's name in any case,
// with or without the trailing dot, and with or without the house's
// domain; prefixes and names of the same group both hold; the first
// group that holds a client wins, by name or by prefix.
func TestGroupsByName(t *testing.T) {
	dir := t.TempDir()
	ads := writeFile(t, dir, "ads.txt", "ads.example.com\n")
	games := writeFile(t, dir, "games.txt", "games.example.com\n")
	names := &namer{names: map[netip.Addr]string{
		netip.MustParseAddr("192.168.1.20"): "kids-tablet",     // from the lease
		netip.MustParseAddr("fd00::20"):     "kids-tablet.lan", // from the router's PTR
		netip.MustParseAddr("192.168.1.21"): "kids-laptop.lan",
		netip.MustParseAddr("192.168.1.22"): "tv",
		netip.MustParseAddr("192.168.1.23"): "kids-tablet.lan.example", // not the house's domain
		netip.MustParseAddr("192.168.1.60"): "tv",
	}}
	f, _ := newFilter(t, Options{
		Blocklists:  []string{ads},
		HostsDomain: "lan",
		Names:       names,
		Groups: []Group{
			{Name: "tv", Clients: []netip.Prefix{netip.MustParsePrefix("192.168.1.60/32")}},
			{Name: "kids", Clients: []netip.Prefix{netip.MustParsePrefix("192.168.1.128/25")},
				Names: []string{"Kids-Tablet.lan.", "kids-laptop"}, Blocklists: []string{ads, games}},
			{Name: "tv by name", Names: []string{"tv"}},
		},
	})
	up := &upstream{}
	for _, tc := range []struct {
		client, name string
		blocked      bool
	}{
		{"192.168.1.20", "games.example.com", true}, // kids-tablet is kids-tablet.lan
		{"fd00::20", "games.example.com", true},
		{"192.168.1.21", "games.example.com", true}, // kids-laptop.lan is kids-laptop
		{"192.168.1.130", "games.example.com", true},
		{"192.168.1.23", "games.example.com", false},
		{"192.168.1.10", "games.example.com", false}, // no name
		{"192.168.1.22", "ads.example.com", false},   // in "tv by name", which has no lists
		{"192.168.1.60", "ads.example.com", false},   // in tv by prefix
	} {
		t.Run(tc.client+"/"+tc.name, func(t *testing.T) {
			if m := ask(t, f, up, netip.MustParseAddr(tc.client), tc.name, dns.TypeA); isBlocked(m) != tc.blocked {
				t.Fatalf("blocked %v, want %v", isBlocked(m), tc.blocked)
			}
		})
	}
}

// TestGroupsBySingleLabel: a single-label name in clients matches the
// device of that name in any domain, as routers name DHCP clients in
// their PTR answers, with no hosts_domain set; a name with a domain
// matches only that domain.
func TestGroupsBySingleLabel(t *testing.T) {
	dir := t.TempDir()
	games := writeFile(t, dir, "games.txt", "games.example.com\n")
	names := &namer{names: map[netip.Addr]string{
		netip.MustParseAddr("192.168.1.20"): "kids-tablet.lan",       // OpenWrt's PTR
		netip.MustParseAddr("192.168.1.21"): "kids-tablet.fritz.box", // a Fritz!Box's PTR
		netip.MustParseAddr("192.168.1.22"): "kids-tablet",           // a lease
		netip.MustParseAddr("192.168.1.23"): "kids-tablet2.lan",
		netip.MustParseAddr("192.168.1.24"): "laptop.fritz.box",
		netip.MustParseAddr("192.168.1.25"): "laptop.lan",
	}}
	f, _ := newFilter(t, Options{
		Names:  names,
		Groups: []Group{{Name: "kids", Names: []string{"kids-tablet", "laptop.lan"}, Blocklists: []string{games}}},
	})
	up := &upstream{}
	for _, tc := range []struct {
		client  string
		blocked bool
	}{
		{"192.168.1.20", true},
		{"192.168.1.21", true},
		{"192.168.1.22", true},
		{"192.168.1.23", false}, // another device
		{"192.168.1.24", false}, // laptop.lan names one domain only
		{"192.168.1.25", true},
	} {
		t.Run(tc.client, func(t *testing.T) {
			if m := ask(t, f, up, netip.MustParseAddr(tc.client), "games.example.com", dns.TypeA); isBlocked(m) != tc.blocked {
				t.Fatalf("%s blocked %v, want %v", names.names[netip.MustParseAddr(tc.client)], isBlocked(m), tc.blocked)
			}
		})
	}
}

// TestGroupFollowsLease: with the names of clients.Names over the
// filter's own lease file, as dotproxy wires them, a group given by name
// follows the device when its lease moves to another address, within
// the hosts files' interval and without a restart.
func TestGroupFollowsLease(t *testing.T) {
	dir := t.TempDir()
	games := writeFile(t, dir, "games.txt", "games.example.com\n")
	leases := filepath.Join(dir, "dhcp.leases")
	write := func(text string) {
		t.Helper()
		// Replaced by rename, as dnsmasq writes it.
		tmp := leases + ".new"
		if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, leases); err != nil {
			t.Fatal(err)
		}
	}
	write("0 aa:bb:cc:dd:ee:01 fd00::1:aaaa kids-tablet *\n0 aa:bb:cc:dd:ee:02 192.168.1.24 tv *\n")
	var f *Filter
	names := clients.New(clients.Options{Hosts: func(a netip.Addr) string { return f.HostName(a) }})
	f, _ = newFilter(t, Options{
		HostsFiles:    []string{leases},
		HostsDomain:   "lan",
		HostsInterval: 10 * time.Millisecond,
		Names:         names,
		Groups:        []Group{{Name: "kids", Names: []string{"kids-tablet.lan"}, Blocklists: []string{games}}},
	})
	f.Start(context.Background())
	up := &upstream{}
	old, rotated := netip.MustParseAddr("fd00::1:aaaa"), netip.MustParseAddr("fd00::1:bbbb")
	blocked := func(client netip.Addr) bool {
		return isBlocked(ask(t, f, up, client, "games.example.com", dns.TypeA))
	}
	if !blocked(old) || blocked(rotated) {
		t.Fatalf("before the move: old address blocked %v, new %v; want true, false", blocked(old), blocked(rotated))
	}
	if got := names.ClientName(old); got != "kids-tablet" {
		t.Errorf("the lease names %s %q, want kids-tablet", old, got)
	}

	write("0 aa:bb:cc:dd:ee:01 fd00::1:bbbb kids-tablet *\n0 aa:bb:cc:dd:ee:02 fd00::1:aaaa tv *\n")
	deadline := time.Now().Add(10 * time.Second)
	for !blocked(rotated) || blocked(old) {
		if time.Now().After(deadline) {
			t.Fatal("the group did not follow the lease to its new address within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := names.ClientName(old); got != "tv" {
		t.Errorf("after the move %s is named %q, want tv", old, got)
	}
}

// TestHostName: a client's name from the files is a hosts line's first
// name or a lease's host name; of two files, the first listed wins; a
// local record names no client.
func TestHostName(t *testing.T) {
	dir := t.TempDir()
	hostsFile := writeFile(t, dir, "hosts", "192.168.1.10 NAS nas.home.arpa\n192.168.1.11 printer.home.arpa printer\n")
	leases := writeFile(t, dir, "dhcp.leases", "0 aa:bb:cc:dd:ee:01 192.168.1.23 kids-tablet *\n0 aa:bb:cc:dd:ee:02 192.168.1.10 other *\n")
	f, _ := newFilter(t, Options{
		LocalRecords: map[string][]netip.Addr{"router.lan": {netip.MustParseAddr("192.168.1.1")}},
		HostsFiles:   []string{hostsFile, leases},
		HostsDomain:  "lan",
	})
	for addr, want := range map[string]string{
		"192.168.1.10": "nas.", "192.168.1.11": "printer.home.arpa.", "192.168.1.23": "kids-tablet.", "192.168.1.1": "", "192.168.1.99": "",
	} {
		if got := f.HostName(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %q, want %q", addr, got, want)
		}
	}
}
