package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQueryLog: with query_log on, the binary writes one JSON line per
// query with the client anonymised, the upstream that answered, and
// whether it was cached or blocked.
func TestQueryLog(t *testing.T) {
	tool(t, "dig", "dnsutils")
	ub := startUnbound(t, newPKI(t), "127.0.0.2")
	dir := t.TempDir()
	logFile := filepath.Join(dir, "queries.jsonl")
	list := filepath.Join(dir, "block.txt")
	if err := os.WriteFile(list, []byte("||ads.example.com^\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{ub.upstream("unbound")},
		cache:     true,
		extra: "query_log: {enabled: true, path: \"" + logFile + "\", anonymize: true}\n" +
			"filter: {blocklists: [\"" + list + "\"], cache_dir: \"" + filepath.Join(dir, "lists") + "\"}\n",
	})
	d.dig(t, "example.com", "A")
	d.dig(t, "example.com", "A", "+tcp")
	d.dig(t, "ads.example.com", "A")
	d.stop() // Close flushes the log

	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for l := range strings.Lines(string(data)) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		if m["qname"] == "ready.invalid." {
			continue // the test's readiness probes (NOTIFY, answered NOTIMP)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("%d query lines, want 3:\n%s", len(lines), data)
	}
	want := []map[string]any{
		{"client": "127.0.0.0", "transport": "udp", "qname": "example.com.", "qtype": "A", "rcode": "NOERROR", "upstream": "unbound"},
		{"client": "127.0.0.0", "transport": "tcp", "qname": "example.com.", "qtype": "A", "rcode": "NOERROR", "cached": true},
		{"client": "127.0.0.0", "transport": "udp", "qname": "ads.example.com.", "rcode": "NXDOMAIN"},
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v\n%v", i, k, lines[i][k], v, lines[i])
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, lines[i]["time"].(string)); err != nil {
			t.Errorf("line %d: time: %v", i, err)
		}
	}
	if b, _ := lines[2]["blocked"].(string); !strings.Contains(b, "block.txt") {
		t.Errorf("blocked query's line does not name the list: %v", lines[2])
	}
}
