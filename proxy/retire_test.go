package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/dotproxy/dotproxy/upstream"
)

// TestRetireWaitsForEveryGeneration: an upstream dropped by the newest
// generation stays open while an older generation still has a query on
// it, however quickly the reloads come.
func TestRetireWaitsForEveryGeneration(t *testing.T) {
	tb := newTestbed(t, 2, func(c *config.Config) {
		c.Policy = "ordered"
		c.Cache.Enabled = false
	})
	asked := slowName(tb.ups[0], "slow.example.", 400*time.Millisecond)
	first := clone(tb.cfg)
	first.Upstreams = first.Upstreams[:1] // a only
	if err := tb.proxy.Reload(first); err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() {
		r, err := ask(t, "tcp", tb.tcp, "slow.example")
		if err == nil && r.Rcode != dns.RcodeSuccess {
			err = &rcodeError{r.Rcode}
		}
		answered <- err
	}()
	<-asked

	second := clone(first)
	second.Policy = "round_robin" // a new generation, on the same upstream
	if err := tb.proxy.Reload(second); err != nil {
		t.Fatal(err)
	}
	third := clone(tb.cfg)
	third.Upstreams = third.Upstreams[1:] // b only: a is dropped
	if err := tb.proxy.Reload(third); err != nil {
		t.Fatal(err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("the query in flight on the first generation failed: %v", err)
	}
}

type rcodeError struct{ rcode int }

func (e *rcodeError) Error() string { return "rcode " + dns.RcodeToString[e.rcode] }

// TestShutdownDuringReload: a reload whose new list hangs on its server
// does not hold Shutdown up.
func TestShutdownDuringReload(t *testing.T) {
	tb := newTestbed(t, 1, nil)
	asked := make(chan struct{}, 1)
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(release) })

	cfg := clone(tb.cfg)
	cfg.Filter.Blocklists = []string{hanging.URL + "/ads.txt"}
	reloaded := make(chan error, 1)
	go func() { reloaded <- tb.proxy.Reload(cfg) }()
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the list was never asked for")
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- tb.proxy.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown waited on the reload's list download")
	}
	<-reloaded
}

// TestReloadQueriesWhileListsLoad: a reload that adds a list whose server
// hangs takes effect at once; the lists loaded before keep filtering.
func TestReloadQueriesWhileListsLoad(t *testing.T) {
	tb := newTestbed(t, 1, nil)
	list := writeList(t, "||ads.example^\n")
	cfg := clone(tb.cfg)
	cfg.Filter.Blocklists = []string{list}
	if err := tb.proxy.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(release) })
	cfg = clone(cfg)
	cfg.Filter.Blocklists = []string{list, hanging.URL}
	if err := tb.proxy.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if r, err := ask(t, "udp", tb.udp, "ads.example"); err != nil || r.Rcode != dns.RcodeNameError {
		t.Fatalf("a list kept across the reload: %v %v", r, err)
	}
	if p := tb.proxy.gen.Load().filter.Pending(); len(p) != 1 {
		t.Fatalf("pending %v, want the new list", p)
	}
}

// TestRequiredLists: with filter.required, queries get SERVFAIL with
// Extended DNS Error 14 (Not Ready) until the lists have loaded; without
// it, they are answered unfiltered meanwhile.
func TestRequiredLists(t *testing.T) {
	for _, required := range []bool{false, true} {
		t.Run(map[bool]string{false: "optional", true: "required"}[required], func(t *testing.T) {
			serve := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-serve:
					w.Write([]byte("||ads.example^\n"))
				case <-r.Context().Done():
				}
			}))
			t.Cleanup(srv.Close)
			tb := newTestbed(t, 1, func(c *config.Config) {
				c.Filter.Blocklists = []string{srv.URL + "/ads.txt"}
				c.Filter.Required = required
			})
			if p := tb.proxy.status().Filter.Pending; len(p) != 1 {
				t.Fatalf("status page's pending lists: %v", p)
			}
			if err := tb.proxy.ready(); required != (err != nil) {
				t.Fatalf("ready: %v", err)
			}
			r, err := ask(t, "udp", tb.udp, "ads.example")
			if err != nil {
				t.Fatal(err)
			}
			if required {
				if r.Rcode != dns.RcodeServerFailure || ede(r) != dns.ExtendedErrorCodeNotReady {
					t.Fatalf("while the required list loads: %v", r)
				}
			} else if r.Rcode != dns.RcodeSuccess {
				t.Fatalf("while the list loads: %v", r)
			}
			close(serve)
			waitFor(t, "the list to load", func() bool {
				r, err := ask(t, "udp", tb.udp, "ads.example")
				return err == nil && r.Rcode == dns.RcodeNameError
			})
			if p := tb.proxy.status().Filter.Pending; len(p) != 0 {
				t.Fatalf("pending after the load: %v", p)
			}
		})
	}
}

// ede returns r's first Extended DNS Error code, or 0xffff.
func ede(r *dns.Msg) uint16 {
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e.InfoCode
			}
		}
	}
	return 0xffff
}

// writeList writes a blocklist file and returns its path.
func writeList(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestShutdownWaitsForRetirers: when Shutdown returns, the parts of a
// generation that a reload was still retiring are closed too, even when
// Shutdown's grace ends before that generation's last query.
func TestShutdownWaitsForRetirers(t *testing.T) {
	tb := newTestbed(t, 2, func(c *config.Config) {
		c.Policy = "ordered"
		c.Cache.Enabled = false
	})
	asked := slowName(tb.ups[0], "slow.example.", time.Second)
	removed := tb.proxy.gen.Load().ups[0]
	go ask(t, "udp", tb.udp, "slow.example")
	<-asked
	cfg := clone(tb.cfg)
	cfg.Upstreams = cfg.Upstreams[1:]
	if err := tb.proxy.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond) // shorter than the slow query
	defer cancel()
	if err := tb.proxy.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	if _, err := removed.Exchange(context.Background(), new(dns.Msg).SetQuestion("closed.example.", dns.TypeA)); !errors.Is(err, upstream.ErrConnClosed) {
		t.Fatalf("the retiring generation's upstream after Shutdown: %v, want it closed", err)
	}
}

// slowName makes srv answer name after delay, and everything else (the
// health probes) at once; the channel tells when name has been asked.
func slowName(srv *dottest.Server, name string, delay time.Duration) <-chan struct{} {
	asked := make(chan struct{}, 1)
	fast := dottest.Answer("192.0.2.7")
	slow := dottest.Delay(delay, fast)
	srv.SetHandler(func(q *dns.Msg, reply func(*dns.Msg)) {
		if q.Question[0].Name != name {
			fast(q, reply)
			return
		}
		select {
		case asked <- struct{}{}:
		default:
		}
		slow(q, reply)
	})
	return asked
}

// TestRetireWaitsOnTheOldDeadline: a reload to a shorter query timeout
// still lets the old generation's queries run to their own deadline
// before its upstreams are closed under them.
func TestRetireWaitsOnTheOldDeadline(t *testing.T) {
	tb := newTestbed(t, 3, func(c *config.Config) {
		c.Policy = "ordered"
		c.Cache.Enabled = false
		c.Timeout = 2500 * time.Millisecond
		c.QueryTimeout = 3 * time.Second
	})
	old := clone(tb.cfg)
	old.Upstreams = old.Upstreams[:2]
	if err := tb.proxy.Reload(old); err != nil {
		t.Fatal(err)
	}
	asked := slowName(tb.ups[0], "slow.example.", 1200*time.Millisecond)
	slowName(tb.ups[1], "slow.example.", 1200*time.Millisecond)
	answered := make(chan error, 1)
	go func() {
		r, err := ask(t, "tcp", tb.tcp, "slow.example")
		if err == nil && r.Rcode != dns.RcodeSuccess {
			err = &rcodeError{r.Rcode}
		}
		answered <- err
	}()
	<-asked
	next := clone(tb.cfg)
	next.Upstreams = next.Upstreams[2:] // the old ones dropped
	next.Timeout = 300 * time.Millisecond
	next.QueryTimeout = 400 * time.Millisecond
	if err := tb.proxy.Reload(next); err != nil {
		t.Fatal(err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("the query in flight on the old generation: %v", err)
	}
}

// TestCountedHoldsTheGeneration: what reaches the upstreams through a
// generation's chain without a client (the cache's own queries) holds
// the generation as a client's query does, so that retire waits for it.
func TestCountedHoldsTheGeneration(t *testing.T) {
	g := &generation{drained: make(chan struct{})}
	release := make(chan struct{})
	r := g.counted(resolver.Func(func(context.Context, *resolver.Request) (resolver.Response, error) {
		<-release
		return resolver.Response{}, nil
	}))
	done := make(chan struct{})
	go func() {
		r.Resolve(context.Background(), resolver.NewRequest(new(dns.Msg).SetQuestion("x.example.", dns.TypeA)))
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for g.active.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the query does not hold the generation")
		}
		runtime.Gosched()
	}
	g.retired.Store(true)
	close(release)
	<-done
	select {
	case <-g.drained:
	case <-time.After(10 * time.Second):
		t.Fatal("the generation did not drain when the query ended")
	}
}
