package admin

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHostCheck: every route refuses a Host header that is not an IP
// literal, localhost or a listed name, which is what a page that rebound
// its own name to the listener's address sends; the security headers
// stay on the refusal.
func TestHostCheck(t *testing.T) {
	fake := &fakeProxy{st: sampleStatus()}
	hosts := []string{"router.lan"}
	_, base := startServer(t, Options{Status: fake.Status, Ready: fake.Ready,
		Hosts: func() []string { return hosts }})
	tests := []struct {
		host string
		want int
	}{
		{"", http.StatusOK}, // the client sends the URL's, an IP literal
		{"127.0.0.1:8053", http.StatusOK},
		{"127.0.0.1", http.StatusOK},
		{"192.168.1.1:8053", http.StatusOK},
		{"[::1]:8053", http.StatusOK},
		{"[::1]", http.StatusOK},
		{"localhost:8053", http.StatusOK},
		{"LocalHost.", http.StatusOK},
		{"router.lan:8053", http.StatusOK},
		{"Router.LAN.", http.StatusOK},
		{"evil.example", http.StatusForbidden},
		{"evil.example:8053", http.StatusForbidden},
		{"localhost.evil.example", http.StatusForbidden},
		{"router.lan.evil.example", http.StatusForbidden},
		{"sub.localhost", http.StatusForbidden},
		{"127.0.0.1.nip.io", http.StatusForbidden},
		{"[evil.example]:80", http.StatusForbidden},
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/api/status", "/", "/metrics", "/healthz", "/readyz", "/assets/style.css"} {
		for _, tt := range tests {
			req, err := http.NewRequest("GET", base+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := resp.StatusCode
			if path == "/metrics" && got == http.StatusNotFound {
				got = http.StatusOK // no metrics handler here: past the check
			}
			if got != tt.want {
				t.Errorf("GET %s with Host %q: status %d, want %d", path, tt.host, resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusForbidden {
				if strings.Contains(string(body), "cloudflare") {
					t.Errorf("GET %s with Host %q: the refusal carries the status: %s", path, tt.host, body)
				}
				if resp.Header.Get("Content-Security-Policy") != contentSecurityPolicy {
					t.Errorf("GET %s with Host %q: no CSP on the refusal", path, tt.host)
				}
			}
		}
	}
}

// TestHostCheckFollowsReload: Options.Hosts is asked per request, so a
// name added by a reload is accepted at once.
func TestHostCheckFollowsReload(t *testing.T) {
	fake := &fakeProxy{st: sampleStatus()}
	var hosts []string
	hostsFn := func() []string {
		fake.mu.Lock()
		defer fake.mu.Unlock()
		return hosts
	}
	_, base := startServer(t, Options{Status: fake.Status, Hosts: hostsFn})
	get := func() int {
		req, _ := http.NewRequest("GET", base+"/healthz", nil)
		req.Host = "dns.home.arpa"
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != http.StatusForbidden {
		t.Fatalf("before the name is listed: status %d, want 403", got)
	}
	fake.mu.Lock()
	hosts = []string{"dns.home.arpa"}
	fake.mu.Unlock()
	if got := get(); got != http.StatusOK {
		t.Fatalf("after the name is listed: status %d, want 200", got)
	}
}
