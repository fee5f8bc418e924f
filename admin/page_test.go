package admin

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPageFirstRender checks that the page carries the figures without
// JavaScript: averages since start worked out by the server.
func TestPageFirstRender(t *testing.T) {
	_, base := startServer(t, Options{Status: (&fakeProxy{st: sampleStatus()}).Status})
	resp, body := fetch(t, "GET", base+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	// sampleStatus: 3600 queries in an hour; cache 900 hits of 3600
	// lookups; 36 of 3600 blocked; upstreams 3000 and 1000 answers.
	for _, want := range []string{
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<script src="/assets/status.js" defer></script>`,
		`<link rel="stylesheet" href="/assets/style.css">`,
		`<th scope="col">Share of traffic</th>`,
		`version <span id="version">1.2.3</span>`,
		`uptime <span id="uptime">1h 0m</span>`,
		`<time id="updated-time" datetime="2026-03-01T13:00:00Z">13:00:00 UTC</time>`,
		`<dd class="big" id="query-rate">1.0/s</dd>`,
		`3,600 queries since start`,
		`<dd class="big" id="cache-rate">25.0%</dd>`,
		`1,234 entries · 4 stale answers`,
		`<dd class="big" id="blocked-share">1.0%</dd>`,
		`36 blocked · 150,000 rules`,
		`<span id="window">average since start</span>`,
		// cloudflare
		`<th scope="col">Transport</th>`,
		`<span class="name">cloudflare</span> <span class="addr">1.1.1.1:853</span></th>
<td data-label="Transport" class="transport">tls</td>`,
		`<span class="state up">up</span>`,
		`<td data-label="Smoothed RTT" class="num">12 ms</td>`,
		`<span class="share">75.0%</span>`,
		`<span class="msg">none</span>`,
		// quad9, down
		`<tr data-name="quad9" class="is-down">`,
		`<span class="addr">9.9.9.9:443</span></th>
<td data-label="Transport" class="transport">https</td>`,
		`<span class="state down">down</span>`,
		`<td data-label="Smoothed RTT" class="num">4.6 ms</td>`,
		`<span class="share">25.0%</span>`,
		`<td data-label="Errors" class="num">17</td>`,
		`<span class="msg">read tcp 192.0.2.1:40000-&gt;9.9.9.9:853: i/o timeout</span> <span class="when">3 min ago</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// TestPageOff checks the page when the cache and filter are off and no
// upstream is configured.
func TestPageOff(t *testing.T) {
	_, base := startServer(t, Options{Status: func() Status { return Status{StartedAt: time.Now()} }})
	_, body := fetch(t, "GET", base+"/")
	for _, want := range []string{
		`<dd class="big" id="cache-rate">off</dd>`,
		`<dd class="big" id="blocked-share">off</dd>`,
		`No upstreams configured.`,
		`<span id="window">average since start, no queries</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// TestPageEscapes gives the upstream a hostile name, address and last
// error: they must reach the page as text, in element content and in the
// data-name attribute alike.
func TestPageEscapes(t *testing.T) {
	const (
		name    = `<script>alert("name")</script>`
		address = `"><img src=x onerror=alert(1)>`
		lastErr = `</td><script>alert('err')</script>`
	)
	st := sampleStatus()
	st.Version = `<b>1</b>`
	st.Upstreams[0].Name = name
	st.Upstreams[0].Address = address
	st.Upstreams[1].LastError = lastErr
	_, base := startServer(t, Options{Status: (&fakeProxy{st: st}).Status})
	_, body := fetch(t, "GET", base+"/")

	if n := strings.Count(body, "<script"); n != 1 {
		t.Errorf("page has %d <script elements, want only the status.js one", n)
	}
	for _, bad := range []string{"<img", "<b>1", "</td><script"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	for _, want := range []string{
		`<tr data-name="&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;">`,
		`<span class="name">&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;</span>`,
		`<span class="addr">&#34;&gt;&lt;img src=x onerror=alert(1)&gt;</span>`,
		`<span class="msg">&lt;/td&gt;&lt;script&gt;alert(&#39;err&#39;)&lt;/script&gt;</span>`,
		`<span id="version">&lt;b&gt;1&lt;/b&gt;</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks the escaped %s", want)
		}
	}

	// The JSON escapes them too, so the API is safe even if some other
	// tool shows it as HTML.
	_, api := fetch(t, "GET", base+"/api/status")
	if strings.Contains(api, "<") || strings.Contains(api, ">") {
		t.Errorf("/api/status holds a raw < or >: %s", api)
	}
}
