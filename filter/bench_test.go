package filter

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/clients"
	"github.com/dotproxy/dotproxy/resolver"
)

const benchDomains = 1_000_000

var tlds = []string{"com", "net", "org", "io", "info", "xyz", "de", "co.uk", "ru", "top", "online", "site"}

// genNames returns n distinct names shaped like those of real blocklists:
// one to three labels of 3 to 14 letters and digits under a common TLD,
// 20 bytes long on average.
func genNames(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, 5))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	seen := make(map[string]bool, n)
	names := make([]string, 0, n)
	var b strings.Builder
	for len(names) < n {
		b.Reset()
		for range 1 + r.IntN(3) {
			for range 3 + r.IntN(12) {
				b.WriteByte(alphabet[r.IntN(len(alphabet))])
			}
			b.WriteByte('.')
		}
		b.WriteString(tlds[r.IntN(len(tlds))])
		if name := b.String(); !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names
}

// genList writes names as a list: one per line, or as a hosts file.
func genList(names []string, hosts bool) []byte {
	var buf bytes.Buffer
	for _, n := range names {
		if hosts {
			buf.WriteString("0.0.0.0 ")
		}
		buf.WriteString(n)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// bench holds the 1M-name list, made once for all benchmarks.
var bench = sync.OnceValues(func() ([]string, *list) {
	names := genNames(1, benchDomains)
	p, err := parse(bytes.NewReader(genList(names, false)), false)
	if err != nil {
		panic(err)
	}
	l := &list{source: "bench"}
	l.table.Store(p.table)
	return names, l
})

// BenchmarkLoad parses a list of 1M names: ns/op is the load time.
func BenchmarkLoad(b *testing.B) {
	names, _ := bench()
	for _, format := range []string{"domains", "hosts"} {
		data := genList(names, format == "hosts")
		b.Run("1M/"+format, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var p *parsed
			for b.Loop() {
				var err error
				if p, err = parse(bytes.NewReader(data), false); err != nil {
					b.Fatal(err)
				}
			}
			if p.table.names != benchDomains {
				b.Fatalf("%d names, want %d", p.table.names, benchDomains)
			}
		})
	}
}

// BenchmarkMatch decides names against the 1M-name list. The cold cases
// cycle through 64Ki names, so that the table is read from memory, not
// from the CPU's cache: a hit costs two reads from DRAM (its slot, then
// its name), a miss usually none (the Bloom filter). The warm cases
// cycle through 256 names, all in cache: the cost of the code itself.
func BenchmarkMatch(b *testing.B) {
	names, l := bench()
	rs := ruleSet{l}
	const nq = 1 << 16
	hits, misses := make([]string, nq), make([]string, nq)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range nq {
		hits[i] = "www." + names[r.IntN(len(names))] // blocked by its parent
		// Not listed: a 12-letter label is not among 1M random ones.
		label := make([]byte, 12)
		for j := range label {
			label[j] = byte('a' + r.IntN(26))
		}
		misses[i] = "www." + string(label) + "." + tlds[r.IntN(len(tlds))]
	}
	const warm = 256
	for _, tc := range []struct {
		name    string
		queries []string
		blocked bool
	}{
		{"hit/cold", hits, true}, {"miss/cold", misses, false},
		{"hit/warm", hits[:warm], true}, {"miss/warm", misses[:warm], false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			mask := len(tc.queries) - 1
			i := 0
			for b.Loop() {
				if rs.match(tc.queries[i&mask]).blocked() != tc.blocked {
					b.Fatalf("%s: blocked %v", tc.queries[i&mask], !tc.blocked)
				}
				i++
			}
		})
	}
}

// BenchmarkResolve runs queries through the whole middleware: local
// names, the client's group, the lists, then next or a block answer.
// The groups cases have three groups by prefix, the client in none;
// by-name adds names to them, the client named by a lease (as
// clients.Names over the filter's hosts files does it) or unnamed.
func BenchmarkResolve(b *testing.B) {
	names, l := bench()
	canned := resolver.Response{Msg: new(dns.Msg)}
	next := resolver.Func(func(context.Context, *resolver.Request) (resolver.Response, error) { return canned, nil })
	ctx := context.Background()
	groups := []group{
		{name: "kids", clients: []netip.Prefix{netip.MustParsePrefix("192.168.2.0/28"), netip.MustParsePrefix("fd00:1::/64")}, rules: ruleSet{l}},
		{name: "tv", clients: []netip.Prefix{netip.MustParsePrefix("192.168.1.50/32")}, rules: ruleSet{l}},
		{name: "guests", clients: []netip.Prefix{netip.MustParsePrefix("192.168.3.0/24")}, rules: ruleSet{l}},
	}
	for _, tc := range []struct {
		name, qname, client string
		groups, byName      bool
	}{
		{"forwarded", "www.example-not-listed.com.", "192.168.1.10", false, false},
		{"blocked", "www." + names[42] + ".", "192.168.1.10", false, false},
		{"forwarded/groups", "www.example-not-listed.com.", "192.168.1.10", true, false},
		{"forwarded/groups-by-name/named", "www.example-not-listed.com.", "192.168.1.10", true, true},
		{"forwarded/groups-by-name/unnamed", "www.example-not-listed.com.", "192.168.1.11", true, true},
	} {
		f := &Filter{log: slog.New(slog.DiscardHandler), global: ruleSet{l}, lists: []*list{l}}
		ln := mustLocal(b)
		ln.clients = map[netip.Addr]string{netip.MustParseAddr("192.168.1.10"): "laptop."}
		f.local.Store(ln)
		if tc.groups {
			f.groups = groups
		}
		if tc.byName {
			f.names = clients.New(clients.Options{Hosts: f.HostName})
			f.byName = map[string]int{"kids-tablet": 0, "kids-tablet.lan": 0, "tv": 1, "tv.lan": 1}
		}
		mw := f.Middleware()(next)
		req := resolver.NewRequest(new(dns.Msg).SetQuestion(tc.qname, dns.TypeA))
		req.Client = netip.MustParseAddr(tc.client)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := mw.Resolve(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemory measures what a process holds with a list of 1M names
// loaded, in a child process that does nothing else: it loads the list
// from a file through New, as dotproxy does, then refreshes it once, and
// reports the live heap after a GC (per name and in all), the table's
// own bytes per name, the resident set after the load (rss-MB) and its
// peak during it (peak-rss-MB), the same after the refresh, which builds
// a new version while the old one is in use (refresh-rss-MB,
// refresh-peak-rss-MB), and the resident set once every freed page is
// back with the OS (returned-rss-MB).
// Resident sizes are less the child's before the load (base-rss-MB).
func BenchmarkMemory(b *testing.B) {
	path := filepath.Join(b.TempDir(), "hosts.txt")
	if err := os.WriteFile(path, genList(genNames(3, benchDomains), true), 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryChild$", "-test.v")
		cmd.Env = append(os.Environ(), "FILTER_MEMORY_LIST="+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		_, line, ok := strings.Cut(string(out), "MEMORY ")
		if !ok {
			b.Fatalf("child said:\n%s", out)
		}
		var heap, table, base, rss, peak, refreshRSS, refreshPeak, returned float64
		var names int
		if _, err := fmt.Sscanf(line, "names=%d heap=%g table=%g base=%g rss=%g peak=%g refresh-rss=%g refresh-peak=%g returned=%g",
			&names, &heap, &table, &base, &rss, &peak, &refreshRSS, &refreshPeak, &returned); err != nil {
			b.Fatalf("child said %q: %v", line, err)
		}
		b.ReportMetric(heap/float64(names), "heap-B/domain")
		b.ReportMetric(table/float64(names), "table-B/domain")
		b.ReportMetric(heap/1e6, "heap-MB")
		b.ReportMetric(base, "base-rss-MB")
		b.ReportMetric(rss-base, "rss-MB")
		b.ReportMetric(peak-base, "peak-rss-MB")
		b.ReportMetric(refreshRSS-base, "refresh-rss-MB")
		b.ReportMetric(refreshPeak-base, "refresh-peak-rss-MB")
		b.ReportMetric(returned-base, "returned-rss-MB")
	}
}

// TestMemoryChild is BenchmarkMemory's child; it runs only there.
func TestMemoryChild(t *testing.T) {
	path := os.Getenv("FILTER_MEMORY_LIST")
	if path == "" {
		t.Skip("run by BenchmarkMemory")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	base := procStatusMB("VmRSS:")
	f, err := New(Options{Blocklists: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	rss, peak := procStatusMB("VmRSS:"), procStatusMB("VmHWM:")
	// A refresh builds the new version while the old one is in use,
	// then returns the old one's memory to the OS.
	f.refreshAll(context.Background())
	refreshRSS, refreshPeak := procStatusMB("VmRSS:"), procStatusMB("VmHWM:")
	debug.FreeOSMemory()
	tb := f.lists[0].table.Load()
	fmt.Printf("MEMORY names=%d heap=%d table=%d base=%g rss=%g peak=%g refresh-rss=%g refresh-peak=%g returned=%g\n",
		tb.names, after.HeapAlloc-before.HeapAlloc, tb.bytes(), base, rss, peak, refreshRSS, refreshPeak, procStatusMB("VmRSS:"))
}

// procStatusMB returns a size from /proc/self/status (VmRSS:, VmHWM:) in
// MB, or 0 where there is no /proc.
func procStatusMB(key string) float64 {
	fh, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1e3
		}
	}
	return 0
}

func mustLocal(b *testing.B) *localNames {
	ln, err := newLocalNames(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	return ln
}
