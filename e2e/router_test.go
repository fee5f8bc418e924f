package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// routerBootAnswer bounds, generously for a shared machine, how soon a
// freshly started dotproxy answers a query with its list server hanging
// and its clock unset: the issue asks for "within a second".
const routerBootAnswer = 5 * time.Second

// TestRouterBoot boots the binary the way a router does after a power
// cut: its one URL blocklist has no on-disk copy and its server hangs,
// and the clock reads 1970 (the test build's DOTPROXY_TEST_CLOCK_FILE).
// It must answer at once, unfiltered, through an upstream whose
// certificate the unset clock would call not yet valid; survive a SIGHUP
// meanwhile; filter once the list arrives; and judge certificates by the
// clock again once it is set.
func TestRouterBoot(t *testing.T) {
	short(t)
	// A certificate valid since long before this build, until tomorrow.
	since, until := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Now().Add(24*time.Hour)
	ca := dottest.NewCAFor(t, since, until)
	caFile, _, _ := ca.WriteFiles(t, t.TempDir(), nil)
	up := dottest.Start(t, dottest.Options{Cert: ca.LeafFor(t, since, until, tlsName), Handler: dottest.Answer("192.0.2.1")})

	release := make(chan struct{})
	lists := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release: // the WAN is up
			io.WriteString(w, "||ads.example^\n")
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(lists.Close)
	var once bool
	releaseList := func() {
		if !once {
			once = true
			close(release)
		}
	}
	t.Cleanup(releaseList)

	dir := t.TempDir()
	clockFile := filepath.Join(dir, "clock")
	setClock := func(tm time.Time) {
		if err := os.WriteFile(clockFile, []byte(tm.UTC().Format(time.RFC3339)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setClock(time.Unix(10, 0)) // no battery-backed clock
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1", false))
	start := time.Now()
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{{name: "up", addr: up.Addr(), caFile: caFile}},
		extra: fmt.Sprintf("admin: %q\nfilter: {blocklists: [%q], cache_dir: %q}\n",
			admin, lists.URL+"/ads.txt", filepath.Join(dir, "lists")),
		env: []string{"DOTPROXY_TEST_CLOCK_FILE=" + clockFile},
	})

	// Answers at once, unfiltered, with the clock unset.
	r, err := d.query("udp", "ads.example.", dns.TypeA)
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("first query, list pending and clock unset: %v %v", r, err)
	}
	if took := time.Since(start); took > routerBootAnswer {
		t.Errorf("first answer %v after start, want within %v", took, routerBootAnswer)
	} else {
		t.Logf("first answer %v after start", took.Round(time.Millisecond))
	}
	d.waitLog(readyTimeout, 0, "the system clock is earlier than this build, so it is not set yet; "+
		"judging upstream certificates' validity at the build time until it is")
	if m := httpGet(t, "http://"+admin+"/metrics"); !strings.Contains(m, "dotproxy_tls_clock_grace_total ") ||
		strings.Contains(m, "dotproxy_tls_clock_grace_total 0\n") {
		t.Error("the clock grace is not counted in /metrics")
	}
	if m := httpGet(t, "http://"+admin+"/metrics"); !strings.Contains(m, `dotproxy_filter_list_pending{kind="block",list="`+lists.URL+`/ads.txt"} 1`) {
		t.Error("/metrics does not show the list pending")
	}
	if s := httpGet(t, "http://"+admin+"/api/status"); !strings.Contains(s, `"pending_lists":["`+lists.URL+`/ads.txt"]`) {
		t.Errorf("/api/status does not show the list pending: %s", s)
	}
	if s := httpGet(t, "http://"+admin+"/readyz"); !strings.Contains(s, "filter lists still loading: "+lists.URL) {
		t.Errorf("/readyz: %q", s)
	}

	// A reload while the list is still loading keeps it serving.
	d.proc.signal(syscall.SIGHUP)
	d.waitLog(readyTimeout, 0, "configuration reloaded")
	if r, err := d.query("tcp", "after-hup.example.", dns.TypeA); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after SIGHUP: %v %v", r, err)
	}

	// The WAN comes up: the list loads and filters.
	releaseList()
	waitUntil(t, "the list to block", func() bool {
		r, err := d.query("udp", "ads.example.", dns.TypeA)
		return err == nil && r.Rcode == dns.RcodeNameError
	})

	// NTP sets the clock, here to after the certificate's end: new
	// connections are judged strictly by it, and fail.
	from := len(d.log())
	setClock(time.Now().Add(48 * time.Hour))
	up.DropConns()
	waitUntil(t, "a strict check to refuse the expired certificate", func() bool {
		r, err := d.query("udp", fmt.Sprintf("strict-%d.example.", time.Now().UnixNano()), dns.TypeA)
		return err == nil && r.Rcode == dns.RcodeServerFailure
	})
	d.waitLog(readyTimeout, from, "the system clock is set; judging upstream certificates by it again")
	// And by today's date the certificate is good again.
	os.Remove(clockFile)
	up.DropConns()
	waitUntil(t, "the upstream to answer again", func() bool {
		r, err := d.query("udp", fmt.Sprintf("today-%d.example.", time.Now().UnixNano()), dns.TypeA)
		return err == nil && r.Rcode == dns.RcodeSuccess
	})
}

// httpGet returns the body at url, failing t on an error.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: clientTimeout}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitUntil polls cond until it holds, failing t after readyTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSIGHUPDuringStart: a SIGHUP that arrives while dotproxy starts (a
// supervisor's reload, a watch of the file), here as soon as it logs that
// it is starting, with a list server that hangs, is a reload: the
// process lives on and serves.
func TestSIGHUPDuringStart(t *testing.T) {
	short(t)
	ca := dottest.NewCA(t)
	caFile, _, _ := ca.WriteFiles(t, t.TempDir(), nil)
	up := dottest.Start(t, dottest.Options{Cert: ca.Leaf(t, tlsName), Handler: dottest.Answer("192.0.2.1")})
	hang := make(chan struct{})
	lists := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(lists.Close)
	t.Cleanup(func() { close(hang) })

	dir := t.TempDir()
	cfg := proxyConfig{
		upstreams: []upstreamConf{{name: "up", addr: up.Addr(), caFile: caFile}},
		extra:     fmt.Sprintf("filter: {blocklists: [%q], cache_dir: %q}\n", lists.URL+"/ads.txt", filepath.Join(dir, "lists")),
	}
	d := &dotproxy{t: t, addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t, "127.0.0.1", true))}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg.yaml(d.addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	d.proc = startProcess(t, baseEnv(), "", dotproxyBin, "-config", path)
	t.Cleanup(d.stop)
	d.waitLog(readyTimeout, 0, "starting dotproxy")
	d.proc.signal(syscall.SIGHUP)
	if err := waitReady(d.proc, d.ready); err != nil {
		t.Fatalf("after a SIGHUP during start-up: %v\n%s", err, d.proc.out)
	}
	if r, err := d.query("udp", "example.com.", dns.TypeA); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after a SIGHUP during start-up: %v %v", r, err)
	}
}
