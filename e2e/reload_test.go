package e2e

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadBySignalAndWatch: SIGHUP makes the binary read its file
// again and apply it while serving; a broken file is refused with the
// old configuration kept, as is an empty one; with watch on, saving the file is enough.
func TestReloadBySignalAndWatch(t *testing.T) {
	tool(t, "dig", "dnsutils")
	ub := startUnbound(t, newPKI(t), "127.0.0.2")
	base := proxyConfig{upstreams: []upstreamConf{ub.upstream("unbound")}, extra: "watch: true\n"}
	d := startDotproxy(t, base)
	write := func(extra string) {
		t.Helper()
		c := base
		c.extra += extra
		if err := os.WriteFile(d.config, []byte(c.yaml(d.addr)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	nas := func() []string {
		t.Helper()
		a, _ := d.dig(t, "nas.home.arpa", "A")
		return a.data("A")
	}
	if got := nas(); len(got) != 0 {
		t.Fatalf("nas.home.arpa before any local record: %q", got)
	}

	write("local_records: {nas.home.arpa: [192.168.1.10]}\n")
	d.proc.signal(syscall.SIGHUP)
	i := d.waitLog(logWait, 0, "configuration reloaded")
	if got := nas(); !slices.Equal(got, []string{"192.168.1.10"}) {
		t.Fatalf("after SIGHUP: %q, want the new local record", got)
	}

	write("local_records: {nas.home.arpa: [not-an-address]}\n")
	d.proc.signal(syscall.SIGHUP)
	i = d.waitLog(logWait, i+1, "configuration not reloaded; the running one stays")
	if e := d.log()[i]; !strings.Contains(e.get("err"), "not-an-address") {
		t.Errorf("the refusal does not say what is wrong: %v", e)
	}
	if got := nas(); !slices.Equal(got, []string{"192.168.1.10"}) {
		t.Fatalf("after a bad file: %q, want the old record still", got)
	}

	// An editor saving the file may leave it empty for a moment; that is
	// an error too, not the built-in default's public resolvers.
	if err := os.WriteFile(d.config, []byte("# being saved\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.proc.signal(syscall.SIGHUP)
	i = d.waitLog(logWait, i+1, "configuration not reloaded; the running one stays")
	if e := d.log()[i]; !strings.Contains(e.get("err"), "empty") {
		t.Errorf("the refusal of an empty file does not say so: %v", e)
	}
	if got := nas(); !slices.Equal(got, []string{"192.168.1.10"}) {
		t.Fatalf("after an empty file: %q, want the old record still", got)
	}

	// The watcher compares modification time and size; a new size is
	// enough even within one clock tick.
	time.Sleep(10 * time.Millisecond)
	write("local_records: {nas.home.arpa: [192.168.1.200]}\n")
	d.waitLog(20*time.Second, i+1, "reloading configuration", "reason", "config file changed")
	d.waitLog(logWait, i+1, "configuration reloaded")
	if got := nas(); !slices.Equal(got, []string{"192.168.1.200"}) {
		t.Fatalf("after saving the file with watch on: %q", got)
	}
}
