package admin

import (
	"strconv"
	"strings"
	"testing"
)

// TestRebindingInBrowser plays DNS rebinding in headless chromium: a
// resolver rule points names of a hostile site at the listener, as a
// rebinding DNS server would, so the browser treats the listener as that
// site's own origin. The page and its same-origin fetch of /api/status
// must both be refused; a name in Options.Hosts (a reverse proxy's) works.
func TestRebindingInBrowser(t *testing.T) {
	chromium, chromedriver := needBrowser(t)
	fake := &fakeProxy{st: sampleStatus()}
	s, _ := startServer(t, Options{Status: fake.Status, Ready: fake.Ready,
		Hosts: func() []string { return []string{"router.test"} }})
	d := startWebDriver(t, chromium, chromedriver, "--host-resolver-rules=MAP *.test 127.0.0.1")
	port := s.Addr().Port()

	// fetchStatus is what a script of the page at that origin can read of
	// /api/status: the status code, and whether the body names an upstream.
	const fetchStatus = `return fetch('/api/status').then(r => r.text().then(b => r.status + ' ' + b.includes('cloudflare')))`
	tests := []struct {
		host      string
		wantPage  string // in the page's text
		wantFetch string
	}{
		{"evil.test", "forbidden", "403 false"},
		{"router.test", "cloudflare", "200 true"},
	}
	for _, tt := range tests {
		url := "http://" + tt.host + ":" + strconv.Itoa(int(port)) + "/"
		if err := d.navigate(url); err != nil {
			t.Fatal(err)
		}
		var text string
		if err := d.execute("return document.body.innerText", &text); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, tt.wantPage) {
			t.Errorf("%s: page text %q, want it to hold %q", url, text, tt.wantPage)
		}
		var got string
		if err := d.execute(fetchStatus, &got); err != nil {
			t.Fatal(err)
		}
		if got != tt.wantFetch {
			t.Errorf("%s: fetch of /api/status gave %q, want %q", url, got, tt.wantFetch)
		}
	}
}
