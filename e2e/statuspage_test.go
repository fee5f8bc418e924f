package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestStatusPageInBrowser: the built binary's status page, loaded in a
// real headless Chromium while the proxy serves queries, shows each
// upstream with its state: the Unbound that answers up, the one nobody
// listens for down, with its error.
func TestStatusPageInBrowser(t *testing.T) {
	chromium := tool(t, "chromium", "chromium")
	ub := startUnbound(t, newPKI(t), "127.0.0.2")
	dead := upstreamConf{name: "dead", addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), freePort(t, "127.0.0.3", false)), caFile: ub.pki.caFile}
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1", false))
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{ub.upstream("unbound"), dead},
		extra: "admin: \"" + admin + "\"\n" +
			"health: {interval: 200ms, down_interval: 200ms, timeout: 500ms, fall: 2, rise: 1}\n",
	})
	d.waitLog(healthWait, 0, "upstream down", "upstream", "dead")
	for i := range 20 {
		if _, err := d.query("udp", fmt.Sprintf("q%d.example.com.", i), 1); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	shot := filepath.Join(dir, "status.png")
	res := run(t, "", nil, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=390,900",
		"--virtual-time-budget=5000", "--screenshot="+shot, "--dump-dom", "http://"+admin+"/")
	if res.code != 0 {
		t.Fatalf("chromium: status %d\n%s", res.code, res.stderr)
	}
	dom := res.stdout
	row := func(name string) string {
		m := regexp.MustCompile(`(?s)<tr data-name="` + name + `".*?</tr>`).FindString(dom)
		if m == "" {
			t.Fatalf("no row for upstream %s in the page:\n%s", name, dom)
		}
		return m
	}
	if r := row("unbound"); !strings.Contains(r, `class="state up"`) || !strings.Contains(r, "127.0.0.2") {
		t.Errorf("unbound's row does not show it up:\n%s", r)
	}
	if r := row("dead"); !strings.Contains(r, `class="state down"`) || !strings.Contains(r, "connection refused") {
		t.Errorf("dead's row does not show it down with its error:\n%s", r)
	}
	// 20 queries, and the test's own readiness probes.
	if m := regexp.MustCompile(`id="query-total">(\d+) queries`).FindStringSubmatch(dom); m == nil || len(m[1]) < 2 {
		t.Errorf("the page does not count the 20 queries sent: %q", m)
	}
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Errorf("no screenshot: %v", err)
	}
	if out := os.Getenv("DOTPROXY_SCREENSHOT"); out != "" {
		data, _ := os.ReadFile(shot)
		os.WriteFile(out, data, 0o644)
	}
}
