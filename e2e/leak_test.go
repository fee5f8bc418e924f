package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// TestNamesStayOutOfLogsAndStatus: with the query log off and the log at
// info, the names clients ask appear nowhere: not in the log, where an
// upstream that answers SERVFAIL to every query is reported once, not
// once per query; not in /api/status, whose last error once quoted the
// query that failed. And /api/status refuses a Host that is not its own,
// as a page that rebound its name to the listener would send.
func TestNamesStayOutOfLogsAndStatus(t *testing.T) {
	const secret = "secret-medical-clinic"
	p := newPKI(t)
	bad := dottest.Start(t, dottest.Options{Cert: p.leafCert(t), Addr: "127.0.0.78:0",
		Handler: dottest.Rcode(dns.RcodeServerFailure)})
	good := dottest.Start(t, dottest.Options{Cert: p.leafCert(t), Addr: "127.0.0.79:0", Handler: dottest.Answer("192.0.2.79")})
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1", false))
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{{name: "bad", addr: bad.Addr(), caFile: p.caFile}, {name: "good", addr: good.Addr(), caFile: p.caFile}},
		logLevel:  "info",
		extra: "policy: ordered\nadmin: \"" + admin + "\"\n" +
			"health: {interval: 1h, down_interval: 1h}\n",
	})

	const queries = 30
	for i := range queries {
		if _, err := d.query("udp", fmt.Sprintf("q%d.%s.example.", i, secret), dns.TypeA); err != nil {
			t.Fatal(err)
		}
	}
	if bad.Queries() < queries {
		t.Fatalf("the SERVFAIL upstream read %d queries, want every one of %d", bad.Queries(), queries)
	}
	// Gone, it fails the next query with an error, which becomes its
	// last error.
	bad.Kill()
	if _, err := d.query("udp", "last."+secret+".example.", dns.TypeA); err != nil {
		t.Fatal(err)
	}

	status := getStatus(t, admin, "")
	var st struct {
		Upstreams []struct {
			Name      string `json:"name"`
			LastError string `json:"last_error"`
		} `json:"upstreams"`
	}
	if err := json.Unmarshal([]byte(status), &st); err != nil {
		t.Fatalf("/api/status: %v\n%s", err, status)
	}
	if len(st.Upstreams) == 0 || st.Upstreams[0].LastError == "" {
		t.Errorf("no last error for the upstream that went away: %s", status)
	}
	if strings.Contains(status, secret) {
		t.Errorf("/api/status names a query:\n%s", status)
	}
	if got := getStatus(t, admin, "evil.example"); !strings.HasPrefix(got, "403 ") {
		t.Errorf("/api/status with Host evil.example: %.80q, want 403", got)
	}

	failovers := 0
	for _, e := range d.log() {
		line := fmt.Sprint(map[string]any(e))
		if strings.Contains(line, secret) {
			t.Errorf("the log names a query: %s", line)
		}
		if e.is("upstream answered SERVFAIL, failing over") {
			failovers++
		}
	}
	if failovers != 1 {
		t.Errorf("%d lines for the SERVFAIL upstream's failovers, want 1 for %d queries", failovers, queries)
	}
}

// getStatus returns /api/status's body, or the status line and body when
// it is not 200, asked with Host host ("" for the address).
func getStatus(t *testing.T, admin, host string) string {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+admin+"/api/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.Status + " " + string(body)
	}
	return string(body)
}
