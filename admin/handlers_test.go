package admin

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHealthz(t *testing.T) {
	fake := &fakeProxy{ready: errNoUpstream}
	_, base := startServer(t, Options{Status: fake.Status, Ready: fake.Ready})

	// Liveness does not depend on readiness.
	resp, body := fetch(t, "GET", base+"/healthz")
	if resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\\n\"", resp.StatusCode, body)
	}
	resp, body = fetch(t, "HEAD", base+"/healthz")
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("HEAD /healthz = %d %q, want 200 and no body", resp.StatusCode, body)
	}
}

// TestReadyz flips the Ready func and watches /readyz follow it.
func TestReadyz(t *testing.T) {
	fake := &fakeProxy{}
	_, base := startServer(t, Options{Status: fake.Status, Ready: fake.Ready})

	steps := []struct {
		name     string
		ready    error
		wantCode int
		wantBody string
	}{
		{"ready", nil, http.StatusOK, "ready\n"},
		{"all upstreams down", errNoUpstream, http.StatusServiceUnavailable, "not ready: " + errNoUpstream.Error() + "\n"},
		{"ready again", nil, http.StatusOK, "ready\n"},
	}
	for _, step := range steps {
		fake.setReady(step.ready)
		resp, body := fetch(t, "GET", base+"/readyz")
		if resp.StatusCode != step.wantCode || body != step.wantBody {
			t.Errorf("%s: GET /readyz = %d %q, want %d %q", step.name, resp.StatusCode, body, step.wantCode, step.wantBody)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control = %q, want no-store", step.name, cc)
		}
	}
}

func TestReadyzWithoutReadyFunc(t *testing.T) {
	_, base := startServer(t, Options{Status: (&fakeProxy{}).Status})
	if resp, body := fetch(t, "GET", base+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz with no Ready func = %d %q, want 200", resp.StatusCode, body)
	}
}

// TestMetrics checks that /metrics is the given handler, untouched, and
// 404 when there is none.
func TestMetrics(t *testing.T) {
	const exposition = "# TYPE dotproxy_queries_total counter\ndotproxy_queries_total 42\n"
	accepts := make(chan string, 1)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accepts <- r.Header.Get("Accept")
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write([]byte(exposition))
	})
	_, base := startServer(t, Options{Status: (&fakeProxy{}).Status, Metrics: metrics})

	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || string(body) != exposition {
		t.Errorf("GET /metrics = %d %q, want 200 %q", resp.StatusCode, body, exposition)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type = %q, want the handler's own", ct)
	}
	if gotAccept := <-accepts; !strings.HasPrefix(gotAccept, "application/openmetrics-text") {
		t.Errorf("handler saw Accept %q, want the scraper's", gotAccept)
	}

	_, base = startServer(t, Options{Status: (&fakeProxy{}).Status})
	if resp, _ := fetch(t, "GET", base+"/metrics"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics with no handler = %d, want 404", resp.StatusCode)
	}
}

// TestAPIStatus checks the JSON: a round trip gives back the snapshot,
// the field names are the documented ones, and the RTT is in ms.
func TestAPIStatus(t *testing.T) {
	want := sampleStatus()
	fake := &fakeProxy{st: want}
	_, base := startServer(t, Options{Status: fake.Status})

	resp, body := fetch(t, "GET", base+"/api/status")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/status = %d %q", resp.StatusCode, body)
	}
	for header, value := range map[string]string{
		"Content-Type":  "application/json",
		"Cache-Control": "no-store",
	} {
		if got := resp.Header.Get(header); got != value {
			t.Errorf("%s = %q, want %q", header, got, value)
		}
	}

	var got Status
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}

	var raw struct {
		Top       map[string]json.RawMessage
		Upstreams []map[string]json.RawMessage `json:"upstreams"`
		Cache     map[string]json.RawMessage   `json:"cache"`
		Filter    map[string]json.RawMessage   `json:"filter"`
		Forward   []map[string]json.RawMessage `json:"forward"`
		Clients   []map[string]json.RawMessage `json:"clients"`
	}
	if err := json.Unmarshal([]byte(body), &raw.Top); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	fields := []struct {
		what string
		obj  map[string]json.RawMessage
		want []string
	}{
		{"status", raw.Top, []string{"cache", "clients", "filter", "forward", "queries", "started_at", "time", "upstreams", "version"}},
		{"named client", raw.Clients[0], []string{"address", "name", "queries"}},
		{"unnamed client", raw.Clients[1], []string{"address", "queries"}},
		{"forward rule", raw.Forward[0], []string{"domains", "servers"}},
		{"upstream with an error", raw.Upstreams[1], []string{"address", "errors", "healthy", "last_error", "last_error_at", "name", "open_conns", "queries", "srtt_ms", "tls_name", "transport"}},
		{"cache", raw.Cache, []string{"entries", "hits", "misses", "stale"}},
		{"filter", raw.Filter, []string{"blocked", "rules"}},
	}
	for _, f := range fields {
		if keys := slices.Sorted(maps.Keys(f.obj)); !slices.Equal(keys, f.want) {
			t.Errorf("%s fields = %v, want %v", f.what, keys, f.want)
		}
	}
	if ms := string(raw.Upstreams[0]["srtt_ms"]); ms != "12.345" {
		t.Errorf("srtt_ms = %s, want 12.345", ms)
	}
	if _, ok := raw.Upstreams[0]["last_error_at"]; ok {
		t.Errorf("last_error_at present for an upstream with no error: %s", body)
	}
}

// TestAPIStatusEmpty checks what a minimal snapshot looks like: null for
// the cache and filter that are off, [] rather than null for upstreams,
// and the time filled in.
func TestAPIStatusEmpty(t *testing.T) {
	_, base := startServer(t, Options{Status: func() Status { return Status{Version: "dev"} }})
	before := time.Now()
	_, body := fetch(t, "GET", base+"/api/status")

	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"cache": "null", "filter": "null", "upstreams": "[]", "clients": "[]"} {
		if got := string(raw[key]); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Time.Before(before.Add(-time.Second)) || st.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("time = %v, want about now (%v)", st.Time, before)
	}
}

// TestMethodNotAllowed checks that nothing but GET and HEAD gets
// through, on every route, the metrics handler included.
func TestMethodNotAllowed(t *testing.T) {
	var called atomic.Bool
	metrics := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called.Store(true) })
	_, base := startServer(t, Options{Status: (&fakeProxy{}).Status, Metrics: metrics})

	for _, path := range []string{"/", "/healthz", "/readyz", "/metrics", "/api/status", "/assets/status.js", "/nowhere"} {
		for _, method := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"} {
			resp, _ := fetch(t, method, base+path)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 405", method, path, resp.StatusCode)
			}
			if allow := resp.Header.Get("Allow"); allow != "GET, HEAD" {
				t.Errorf("%s %s: Allow = %q, want \"GET, HEAD\"", method, path, allow)
			}
		}
	}
	if called.Load() {
		t.Error("the metrics handler ran for a method other than GET or HEAD")
	}
}

// TestHeaders checks the security and caching headers and the content
// types of every kind of response.
func TestHeaders(t *testing.T) {
	_, base := startServer(t, Options{Status: (&fakeProxy{st: sampleStatus()}).Status})

	tests := []struct {
		path        string
		code        int
		contentType string
		cache       string
	}{
		{"/", http.StatusOK, "text/html; charset=utf-8", "no-store"},
		{"/api/status", http.StatusOK, "application/json", "no-store"},
		{"/healthz", http.StatusOK, "text/plain; charset=utf-8", "no-store"},
		{"/readyz", http.StatusOK, "text/plain; charset=utf-8", "no-store"},
		{"/assets/status.js", http.StatusOK, "text/javascript; charset=utf-8", "no-cache"},
		{"/assets/style.css", http.StatusOK, "text/css; charset=utf-8", "no-cache"},
		{"/assets/favicon.svg", http.StatusOK, "image/svg+xml", "no-cache"},
		{"/assets/index.html", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"/metrics", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"/nowhere", http.StatusNotFound, "text/plain; charset=utf-8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, _ := fetch(t, "GET", base+tt.path)
			if resp.StatusCode != tt.code {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.code)
			}
			want := map[string]string{
				"Content-Security-Policy": contentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"Content-Type":            tt.contentType,
				"Cache-Control":           tt.cache,
			}
			for header, value := range want {
				if got := resp.Header.Get(header); got != value {
					t.Errorf("%s = %q, want %q", header, got, value)
				}
			}
		})
	}
	if !strings.HasPrefix(contentSecurityPolicy, "default-src 'self';") {
		t.Errorf("CSP %q does not start with default-src 'self'", contentSecurityPolicy)
	}
}

// TestAssetRevalidation checks that a browser holding an asset gets 304.
func TestAssetRevalidation(t *testing.T) {
	_, base := startServer(t, Options{Status: (&fakeProxy{}).Status})
	resp, _ := fetch(t, "GET", base+"/assets/status.js")
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on /assets/status.js")
	}
	req, _ := http.NewRequest("GET", base+"/assets/status.js", nil)
	req.Header.Set("If-None-Match", etag)
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match = %d, want 304", again.StatusCode)
	}
}
