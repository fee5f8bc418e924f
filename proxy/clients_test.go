package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/admin"
	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/resolver"
)

// TestClientNames: a client is named by the PTR answer of the forward
// rule for its reverse zone, in the background; then the filter group
// that names it applies to its queries, the status page lists it among
// the top clients with its name, and the query log carries the name.
func TestClientNames(t *testing.T) {
	var ptrAsked atomic.Int64
	routerSrv := dottest.StartPlain(t, func(q *dns.Msg, reply func(*dns.Msg)) {
		qs := q.Question[0]
		if qs.Qtype != dns.TypePTR || qs.Name != "1.0.0.127.in-addr.arpa." {
			reply(new(dns.Msg).SetRcode(q, dns.RcodeNameError))
			return
		}
		ptrAsked.Add(1)
		m := new(dns.Msg).SetReply(q)
		m.Answer = []dns.RR{&dns.PTR{Hdr: dns.RR_Header{Name: qs.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: "Laptop.lan."}}
		reply(m)
	}, false)
	dir := t.TempDir()
	games := filepath.Join(dir, "games.txt")
	if err := os.WriteFile(games, []byte("games.example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "queries.jsonl")
	tb := newTestbed(t, 1, func(c *config.Config) {
		c.Admin = netip.MustParseAddrPort("127.0.0.1:0")
		// The test's clients come from 127.0.0.1: its reverse zone
		// stands in for the house's.
		c.Forward = []config.Forward{{Domains: []string{"127.in-addr.arpa"}, Servers: []netip.AddrPort{routerSrv.Addr()}}}
		c.HostsDomain = "lan"
		c.Filter.Groups = []config.Group{{Name: "laptop", Names: []string{"laptop"}, Blocklists: []string{games}}}
		c.QueryLog = config.QueryLog{Enabled: true, Path: logPath, Anonymize: false}
	})
	blocked := func() bool {
		r, err := ask(t, "udp", tb.udp, "games.example.com")
		if err != nil {
			t.Fatal(err)
		}
		e := resolver.EDE(r)
		return e != nil && e.InfoCode == dns.ExtendedErrorCodeBlocked
	}
	// The first query may go unnamed; naming never holds it up.
	blocked()
	waitFor(t, "the group named laptop applied to 127.0.0.1", blocked)
	if n := ptrAsked.Load(); n != 1 {
		t.Errorf("the router was asked %d times for the client's name, want once (cached)", n)
	}

	resp, err := http.Get("http://" + tb.proxy.admin.Addr().String() + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st admin.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("/api/status: %v\n%s", err, body)
	}
	if len(st.Clients) != 1 || st.Clients[0].Address != "127.0.0.1" || st.Clients[0].Name != "laptop.lan" || st.Clients[0].Queries < 2 {
		t.Errorf("top clients %+v, want 127.0.0.1 named laptop.lan with 2 queries or more", st.Clients)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tb.proxy.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	if last["client_name"] != "laptop.lan" || last["client"] != "127.0.0.1" {
		t.Errorf("last query log line %v, want client 127.0.0.1 named laptop.lan", last)
	}
}
