package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/dotproxy/dotproxy/admin"
	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/dottest"
)

// TestAdminReadinessAndStatus: /readyz follows the upstreams' health
// (ready while one is up, 503 when all are down, ready again after), and
// /api/status shows each upstream as the proxy sees it.
func TestAdminReadinessAndStatus(t *testing.T) {
	tb := newTestbed(t, 2, func(c *config.Config) {
		c.Admin = netip.MustParseAddrPort("127.0.0.1:0")
	})
	base := "http://" + tb.proxy.admin.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ready := func(want int) func() bool {
		return func() bool { code, _ := get("/readyz"); return code == want }
	}
	waitFor(t, "ready", ready(http.StatusOK))
	if _, err := ask(t, "udp", tb.udp, "example.com"); err != nil {
		t.Fatal(err)
	}

	code, body := get("/api/status")
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("/api/status: %d %v\n%s", code, err, body)
	}
	if len(st.Upstreams) != 2 || st.Upstreams[0].Name != "a" || !st.Upstreams[0].Healthy || st.Version != "test" ||
		st.Queries != 1 || st.Upstreams[0].Queries+st.Upstreams[1].Queries == 0 {
		t.Fatalf("status: %+v", st)
	}

	// The metrics move as queries flow.
	scrape := func() string {
		t.Helper()
		code, body := get("/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		return body
	}
	const udpA = `dotproxy_queries_total{qtype="A",rcode="NOERROR",transport="udp"}`
	if m := scrape(); !strings.Contains(m, udpA+" 1\n") || !strings.Contains(m, `dotproxy_upstream_up{upstream="a"} 1`) {
		t.Fatalf("metrics after one query lack %s 1 or upstream a up:\n%s", udpA, m)
	}
	for range 3 {
		if _, err := ask(t, "udp", tb.udp, "example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if m := scrape(); !strings.Contains(m, udpA+" 4\n") || !strings.Contains(m, "dotproxy_cache_hits_total 3\n") {
		t.Fatalf("metrics after three more (cached) queries:\n%s", m)
	}

	for _, s := range tb.ups {
		s.SetHandler(dottest.Silent())
	}
	waitFor(t, "not ready with every upstream down", ready(http.StatusServiceUnavailable))
	if _, body := get("/readyz"); !strings.Contains(body, errNoHealthyUpstream.Error()) {
		t.Errorf("/readyz does not say why: %q", body)
	}
	tb.ups[1].SetHandler(dottest.Answer("192.0.2.1"))
	waitFor(t, "ready again", ready(http.StatusOK))
}
