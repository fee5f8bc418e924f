package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// aliasBomb is a small, valid file whose local records all alias one long
// list of addresses (the allow list): names × addresses records once
// expanded. With 2,500 names
// and 3,000 addresses it is the 85 KB file of issue 16, which took 20 s
// and 1.38 GB to load.
func aliasBomb(names, addrs int) string {
	var b strings.Builder
	b.WriteString("allow: &l [")
	for i := range addrs {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	}
	b.WriteString("]\nlocal_records:\n")
	for i := range names {
		fmt.Fprintf(&b, "  n%d.home.arpa: *l\n", i)
	}
	return b.String()
}

// TestAliasBomb checks that a file whose aliases expand past the bound is
// refused at once, with one problem at the alias that crosses it.
func TestAliasBomb(t *testing.T) {
	file := aliasBomb(2500, 3000)
	if len(file) < 80_000 || len(file) > 90_000 {
		t.Fatalf("the bomb is %d bytes, want the issue's 85 KB", len(file))
	}
	c, err := Parse("config.yaml", []byte(file))
	if c != nil {
		t.Errorf("got a *Config with the error")
	}
	// 3,001 nodes per alias: the 34th crosses 100,000, on line 3+33.
	sameLines(t, problemLines(t, err), []string{
		"config.yaml:36: local_records.n33.home.arpa: aliases expand the configuration by more than 100000 YAML nodes; write the entries out or share less",
	})
}

// TestAliasesSharedWithinBound: sharing lists through aliases, as a
// person would, is decoded as if written out.
func TestAliasesSharedWithinBound(t *testing.T) {
	file := `filter:
  blocklists: &lists [/etc/dotproxy/ads.txt, /etc/dotproxy/malware.txt]
  groups:
    - {name: kids, clients: [192.168.1.64/26], blocklists: *lists}
    - {name: guests, clients: [192.168.2.0/24], blocklists: *lists}
local_records:
  nas.home.arpa: &nas [192.168.1.10, "fd00::10"]
  files.home.arpa: *nas
`
	c, err := Parse("config.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if g := c.Filter.Groups; len(g) != 2 || len(g[1].Blocklists) != 2 || len(c.LocalRecords["files.home.arpa"]) != 2 {
		t.Errorf("aliases not followed: groups %+v, local records %v", g, c.LocalRecords)
	}

	// Just under the bound: 33 aliases of 3,001 nodes.
	c, err = Parse("config.yaml", []byte(aliasBomb(33, 3000)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.LocalRecords); n != 33 || len(c.LocalRecords["n32.home.arpa"]) != 3000 {
		t.Errorf("%d local records, want 33 of 3,000 addresses", n)
	}
}

// TestFileSizeLimit: a file over 16 MiB is refused by name, Load reading
// no more than the limit of it, and so is such data given to Parse.
func TestFileSizeLimit(t *testing.T) {
	const want = "the file is larger than the limit of 16 MiB"
	path := filepath.Join(t.TempDir(), "config.yaml")
	big := []byte("# " + strings.Repeat("x", maxFileSize) + "\npolicy: random\n")
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	c, source, err := Load(path)
	if c != nil || source != path {
		t.Errorf("Load = %v, %q; want nil, %q", c, source, path)
	}
	sameLines(t, problemLines(t, err), []string{path + ": " + want})

	if _, err := Parse("big.yaml", big); err == nil || err.Error() != "big.yaml: "+want {
		t.Errorf("Parse: %v, want %q", err, "big.yaml: "+want)
	}

	// At the limit exactly: read whole. (Not decoded here: YAML's
	// scanner takes long over 16 MiB under the race detector.)
	if err := os.WriteFile(path, big[:maxFileSize], 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := readFile(path); err != nil || len(data) != maxFileSize {
		t.Errorf("a file of exactly the limit: %d bytes read, %v", len(data), err)
	}
}
