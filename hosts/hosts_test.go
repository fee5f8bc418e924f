package hosts

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var now = time.Unix(1_800_000_000, 0)

func entries(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name + " " + e.Addr.String()
	}
	return out
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, text, domain string
		want               []string
		problems           []string
	}{
		{"hosts file", "127.0.0.1 localhost\n# a comment\n\n192.168.1.10  NAS nas.home.arpa. # the NAS\nfd00::10 nas.home.arpa\n::ffff:10.0.0.1 mapped\n", "",
			[]string{"localhost. 127.0.0.1", "nas. 192.168.1.10", "nas.home.arpa. 192.168.1.10", "nas.home.arpa. fd00::10", "mapped. 10.0.0.1"}, nil},
		{"dnsmasq leases", fmt.Sprintf("%d aa:bb:cc:dd:ee:01 192.168.1.23 printer 01:aa:bb:cc:dd:ee:01\n", now.Unix()+3600) +
			"0 aa:bb:cc:dd:ee:02 192.168.1.24 Kids-Tablet *\n" +
			fmt.Sprintf("%d aa:bb:cc:dd:ee:03 192.168.1.25 expired *\n", now.Unix()-1) +
			"0 aa:bb:cc:dd:ee:04 192.168.1.26 * *\n" +
			"duid 00:01:00:01:2c:00:00:00:aa:bb:cc:dd:ee:ff\n" +
			"0 12345678 fd00::23 printer 00:01:00:01\n", "lan",
			[]string{"printer. 192.168.1.23", "printer.lan. 192.168.1.23", "kids-tablet. 192.168.1.24", "kids-tablet.lan. 192.168.1.24",
				"printer. fd00::23", "printer.lan. fd00::23"}, nil},
		{"domain only for single labels", "192.168.1.10 nas nas.home.arpa\n", "lan.",
			[]string{"nas. 192.168.1.10", "nas.lan. 192.168.1.10", "nas.home.arpa. 192.168.1.10"}, nil},
		{"bad lines skipped, the rest used", "192.168.1.10 nas\n192.168.1.300 bad\n10.0.0.1\nfe80::1%eth0 router\n10.0.0.2 bad..name ok\nsomething else entirely\n12 aa:bb 1.2.3 name id\n192.168.1.11 tv\n", "",
			[]string{"nas. 192.168.1.10", "ok. 10.0.0.2", "tv. 192.168.1.11"},
			[]string{
				"hosts:2: neither a hosts line (ADDRESS NAME...) nor a lease line (EXPIRY MAC ADDRESS NAME ID)",
				"hosts:3: 10.0.0.1 has no name",
				"hosts:4: fe80::1%eth0: an address with a zone means nothing to other hosts",
				`hosts:5: "bad..name" is not a host name`,
				"hosts:6: neither a hosts line (ADDRESS NAME...) nor a lease line (EXPIRY MAC ADDRESS NAME ID)",
				`hosts:7: lease: "1.2.3" is not an address`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es, ps := Parse(strings.NewReader(tc.text), "hosts", tc.domain, now)
			if got := entries(es); !slices.Equal(got, tc.want) {
				t.Errorf("entries\n got %q\nwant %q", got, tc.want)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.Error())
			}
			if !slices.Equal(got, tc.problems) {
				t.Errorf("problems\n got %q\nwant %q", got, tc.problems)
			}
		})
	}
}

func TestParseLongLine(t *testing.T) {
	_, ps := Parse(strings.NewReader("192.168.1.1 "+strings.Repeat("a", 2*maxLine)+"\n"), "big", "", now)
	if len(ps) != 1 || ps[0].File != "big" {
		t.Errorf("problems %v, want one for the file", ps)
	}
}

// TestFilesChanged: a rewrite, a replacement by rename, a file appearing
// and one removed are each a change; nothing else is.
func TestFilesChanged(t *testing.T) {
	dir := t.TempDir()
	leases := filepath.Join(dir, "dhcp.leases")
	later := filepath.Join(dir, "hosts") // appears later
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(leases, "0 aa:bb:cc:dd:ee:01 192.168.1.23 printer *\n")
	f := NewFiles("lan", leases, later)
	es, ps := f.Load(now)
	if got := entries(es); !slices.Equal(got, []string{"printer. 192.168.1.23", "printer.lan. 192.168.1.23"}) || len(ps) != 1 {
		t.Fatalf("entries %q, problems %v; want printer's and one missing file", got, ps)
	}
	if f.Changed() {
		t.Fatal("changed with nothing written")
	}

	steps := []struct {
		what   string
		change func()
		want   []string
	}{
		{"lease added", func() {
			write(leases, "0 aa:bb:cc:dd:ee:01 192.168.1.23 printer *\n0 aa:bb:cc:dd:ee:02 192.168.1.24 tv *\n")
		}, []string{"printer. 192.168.1.23", "printer.lan. 192.168.1.23", "tv. 192.168.1.24", "tv.lan. 192.168.1.24"}},
		{"replaced by rename, same size", func() {
			tmp := filepath.Join(dir, "tmp")
			write(tmp, "0 aa:bb:cc:dd:ee:01 192.168.1.33 printer *\n0 aa:bb:cc:dd:ee:02 192.168.1.34 tv *\n")
			if err := os.Rename(tmp, leases); err != nil {
				t.Fatal(err)
			}
		}, []string{"printer. 192.168.1.33", "printer.lan. 192.168.1.33", "tv. 192.168.1.34", "tv.lan. 192.168.1.34"}},
		{"hosts file appears", func() { write(later, "192.168.1.10 nas\n") },
			[]string{"printer. 192.168.1.33", "printer.lan. 192.168.1.33", "tv. 192.168.1.34", "tv.lan. 192.168.1.34", "nas. 192.168.1.10", "nas.lan. 192.168.1.10"}},
		{"lease file removed", func() {
			if err := os.Remove(leases); err != nil {
				t.Fatal(err)
			}
		}, []string{"nas. 192.168.1.10", "nas.lan. 192.168.1.10"}},
	}
	for _, s := range steps {
		s.change()
		if !f.Changed() {
			t.Fatalf("%s: not seen as a change", s.what)
		}
		es, _ := f.Load(now)
		if got := entries(es); !slices.Equal(got, s.want) {
			t.Errorf("%s: entries\n got %q\nwant %q", s.what, got, s.want)
		}
		if f.Changed() {
			t.Errorf("%s: still changed after Load", s.what)
		}
	}
}
