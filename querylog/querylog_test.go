package querylog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// event is a query from client for name, answered by quad9 in 12.5 ms.
func event(client, name string) resolver.QueryEvent {
	return resolver.QueryEvent{
		Time:      time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.FixedZone("CET", 3600)),
		Client:    netip.MustParseAddrPort(client),
		Transport: resolver.UDP,
		Name:      name,
		Qtype:     dns.TypeAAAA,
		Rcode:     dns.RcodeSuccess,
		Duration:  12500 * time.Microsecond,
		Info:      resolver.Info{Upstream: "quad9"},
	}
}

// lines parses every line of b as a JSON object.
func lines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// TestLine: each field of a line, for the ways a query can be answered.
func TestLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queries.jsonl")
	l, err := New(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	evs := []resolver.QueryEvent{event("192.168.1.20:40000", "www.example.com.")}
	blocked := event("[fd00::20]:5353", "ads.example.com.")
	blocked.Transport, blocked.Qtype, blocked.Rcode = resolver.TCP, dns.TypeHTTPS, dns.RcodeNameError
	blocked.Info = resolver.Info{Blocked: "https://lists.example/ads.txt"}
	stale := event("192.168.1.21:40000", "old.example.")
	stale.Info = resolver.Info{Cached: true, Stale: true}
	odd := event("192.168.1.22:40000", `we"ird\.example.`)
	odd.Qtype, odd.Rcode, odd.Info = 65280, dns.RcodeBadVers, resolver.Info{Local: true}
	rebound := event("192.168.1.23:40000", "evil.example.")
	rebound.Qtype, rebound.Rcode, rebound.Info = dns.TypeA, dns.RcodeRefused, resolver.Info{Upstream: "quad9", Rebind: true}
	evs = append(evs, blocked, stale, odd, rebound)
	for _, ev := range evs {
		l.ObserveQuery(ev)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := lines(t, b)
	want := []map[string]any{
		{"time": "2026-03-01T11:30:45.123456789Z", "client": "192.168.1.20", "transport": "udp", "qname": "www.example.com.",
			"qtype": "AAAA", "rcode": "NOERROR", "upstream": "quad9", "duration_ms": 12.5, "cached": false, "stale": false, "local": false},
		{"time": "2026-03-01T11:30:45.123456789Z", "client": "fd00::20", "transport": "tcp", "qname": "ads.example.com.",
			"qtype": "HTTPS", "rcode": "NXDOMAIN", "upstream": "", "duration_ms": 12.5, "cached": false, "stale": false, "local": false,
			"blocked": "https://lists.example/ads.txt"},
		{"time": "2026-03-01T11:30:45.123456789Z", "client": "192.168.1.21", "transport": "udp", "qname": "old.example.",
			"qtype": "AAAA", "rcode": "NOERROR", "upstream": "", "duration_ms": 12.5, "cached": true, "stale": true, "local": false},
		{"time": "2026-03-01T11:30:45.123456789Z", "client": "192.168.1.22", "transport": "udp", "qname": `we"ird\.example.`,
			"qtype": "TYPE65280", "rcode": "BADVERS", "upstream": "", "duration_ms": 12.5, "cached": false, "stale": false, "local": true},
		{"time": "2026-03-01T11:30:45.123456789Z", "client": "192.168.1.23", "transport": "udp", "qname": "evil.example.",
			"qtype": "A", "rcode": "REFUSED", "upstream": "quad9", "duration_ms": 12.5, "cached": false, "stale": false, "local": false,
			"rebind": true},
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), b)
	}
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Errorf("line %d:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
	// The umask may take bits away, never add any.
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&^fileMode != 0 {
		t.Errorf("file mode %v (%v), want at most %v", fi.Mode().Perm(), err, os.FileMode(fileMode))
	}
}

// TestAnonymize: with Anonymize, a client is logged as its IPv4 /24 or
// IPv6 /56, host bits zero.
func TestAnonymize(t *testing.T) {
	for _, tc := range []struct{ client, want string }{
		{"192.168.1.20:53000", "192.168.1.0"},
		{"10.1.2.255:1", "10.1.2.0"},
		{"[::ffff:192.168.7.9]:53000", "192.168.7.0"},
		{"[2001:db8:abcd:12ff:1:2:3:4]:53000", "2001:db8:abcd:1200::"},
		{"[fe80::1%eth0]:53000", "fe80::"},
		{"[::1]:53000", "::"},
	} {
		t.Run(tc.client, func(t *testing.T) {
			var buf syncBuffer
			l := start(&buf, Options{Anonymize: true})
			l.ObserveQuery(event(tc.client, "x.example."))
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			got := lines(t, buf.bytes())
			if len(got) != 1 || got[0]["client"] != tc.want {
				t.Fatalf("logged %v, want client %s", got, tc.want)
			}
		})
	}
}

// TestDropWhenFull: with the writer stuck, ObserveQuery does not wait:
// what does not fit the queue is dropped and counted, and the count is
// written to the log.
func TestDropWhenFull(t *testing.T) {
	out := &stuckWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	l := start(out, Options{QueueSize: 2})
	l.ObserveQuery(event("192.168.1.20:1", "q0.example."))
	<-out.entered // the writer took q0 and is stuck writing it
	for i := 1; i <= 5; i++ {
		l.ObserveQuery(event("192.168.1.20:1", fmt.Sprintf("q%d.example.", i)))
	}
	if got := l.Dropped(); got != 3 {
		t.Fatalf("dropped %d, want 3 (q0 taken, q1 and q2 queued)", got)
	}
	close(out.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got := lines(t, out.bytes())
	var names []any
	for _, m := range got[:len(got)-1] {
		names = append(names, m["qname"])
	}
	if fmt.Sprint(names) != "[q0.example. q1.example. q2.example.]" {
		t.Errorf("logged %v", names)
	}
	if last := got[len(got)-1]; last["dropped"] != float64(3) || last["time"] == nil {
		t.Errorf("last line %v, want the drop report", last)
	}
}

// TestCloseFlushes: every query observed before Close is in the file when
// Close returns, from many goroutines at once; the file is appended to.
func TestCloseFlushes(t *testing.T) {
	const workers, each = 8, 200
	path := filepath.Join(t.TempDir(), "queries.jsonl")
	if err := os.WriteFile(path, []byte(`{"earlier":true}`+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	l, err := New(Options{Path: path, QueueSize: workers * each})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				l.ObserveQuery(event("192.168.1.20:1", fmt.Sprintf("w%d-%d.example.", w, i)))
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := lines(t, b)
	if len(got) != 1+workers*each || got[0]["earlier"] != true || l.Dropped() != 0 {
		t.Fatalf("%d lines (first %v), %d dropped; want the earlier line and %d", len(got), got[0], l.Dropped(), workers*each)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	l.ObserveQuery(event("192.168.1.20:1", "late.example.")) // dropped, not a panic
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("no path accepted")
	}
	if _, err := New(Options{Path: filepath.Join(t.TempDir(), "missing", "q.jsonl")}); err == nil ||
		!strings.Contains(err.Error(), "missing") {
		t.Errorf("unopenable path: %v", err)
	}
}

// syncBuffer is a bytes.Buffer that the writer goroutine and the test
// may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Close() error { return nil }

func (b *syncBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// stuckWriter blocks its first Write until released, as a log on a
// stalled disk would, saying when it is entered.
type stuckWriter struct {
	syncBuffer
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.once.Do(func() {
		w.entered <- struct{}{}
		<-w.release
	})
	return w.syncBuffer.Write(p)
}

// discard is an io.WriteCloser that keeps nothing.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Close() error                { return nil }

// BenchmarkObserveQuery is the query log's cost on each query's path:
// handing the event to the writer (or dropping it).
func BenchmarkObserveQuery(b *testing.B) {
	l := start(discard{}, Options{Anonymize: true})
	ev := event("192.168.1.20:40000", "www.example.com.")
	b.ReportAllocs()
	for b.Loop() {
		l.ObserveQuery(ev)
	}
	b.StopTimer()
	l.Close()
	b.ReportMetric(float64(l.Dropped())/float64(b.N), "dropped/op")
}

// BenchmarkLine is the writer goroutine's cost per query: building and
// encoding its line.
func BenchmarkLine(b *testing.B) {
	enc := json.NewEncoder(discard{})
	ev := event("192.168.1.20:40000", "www.example.com.")
	b.ReportAllocs()
	for b.Loop() {
		if err := enc.Encode(newRecord(&ev, true)); err != nil {
			b.Fatal(err)
		}
	}
}

// names is a Namer from a map.
type names map[netip.Addr]string

func (n names) ClientName(a netip.Addr) string { return n[a] }

// TestClientName: a known client's name is its line's client_name, an
// unknown client's line has none, and with Anonymize no line has one:
// the name would give away the host the truncated address hides.
func TestClientName(t *testing.T) {
	n := names{netip.MustParseAddr("192.168.1.20"): "kids-tablet", netip.MustParseAddr("192.168.7.9"): "tv"}
	for _, tc := range []struct {
		anonymize bool
		client    string
		want      any // nil: no field
	}{
		{false, "192.168.1.20:40000", "kids-tablet"},
		{false, "[::ffff:192.168.7.9]:53000", "tv"},
		{false, "192.168.1.21:40000", nil},
		{true, "192.168.1.20:40000", nil},
	} {
		t.Run(fmt.Sprint(tc.anonymize, tc.client), func(t *testing.T) {
			var buf syncBuffer
			l := start(&buf, Options{Anonymize: tc.anonymize, Names: n})
			l.ObserveQuery(event(tc.client, "x.example."))
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			got := lines(t, buf.bytes())
			if len(got) != 1 {
				t.Fatalf("logged %v", got)
			}
			if name, ok := got[0]["client_name"]; name != tc.want || ok != (tc.want != nil) {
				t.Errorf("client_name %v (present %v), want %v", name, ok, tc.want)
			}
		})
	}
}
