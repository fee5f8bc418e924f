package filter

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// pollTimeout bounds every wait for the refresh loop, so that a bug
// fails the test instead of hanging it.
const pollTimeout = 5 * time.Second

// listServer is an in-process HTTP server for one list whose answer a
// test changes: a body with an ETag, or an error status.
type listServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     string
	status   int
	requests atomic.Int64
}

func newListServer(t *testing.T, body string) *listServer {
	t.Helper()
	s := &listServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "<html><body>oops</body></html>", status)
			return
		}
		etag := fmt.Sprintf(`"%x"`, hashName(body))
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *listServer) set(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

// blocks reports whether f blocks name.
func blocks(t *testing.T, f *Filter, name string) bool {
	t.Helper()
	return isBlocked(ask(t, f, &upstream{}, netip.Addr{}, name, dns.TypeA))
}

func TestRefresh(t *testing.T) {
	srv := newListServer(t, "v1.example.com\n")
	f, rec := newFilter(t, Options{Blocklists: []string{srv.URL + "/list.txt"}, CacheDir: t.TempDir()})
	f.refreshAll(context.Background())
	if !blocks(t, f, "v1.example.com") {
		t.Fatal("v1 not blocked after the first load")
	}
	first := f.Stats().Lists[0]

	steps := []struct {
		name           string
		status         int
		body           string
		v1, v2         bool // blocked after the step
		failed         bool
		errText        string
		loadedAgain    bool
		malformedCount int
	}{
		{name: "unchanged: 304", status: 200, body: "v1.example.com\n", v1: true},
		{name: "changed", status: 200, body: "v2.example.com\nbad!line\n", v2: true, loadedAgain: true, malformedCount: 1},
		{name: "server error", status: 500, v2: true, failed: true, errText: "500 Internal Server Error"},
		{name: "html error page", status: 200, body: "<!DOCTYPE html>\n<html>Sign in to continue</html>\n", v2: true, failed: true, errText: "HTML"},
		{name: "garbage", status: 200, body: "v1.example.com\n%%%\n@@@\n", v2: true, failed: true, errText: "malformed"},
		{name: "recovered", status: 200, body: "v1.example.com\n", v1: true, loadedAgain: true},
	}
	failures := uint64(0)
	prev := first
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			srv.set(st.status, st.body)
			before := srv.requests.Load()
			f.refreshAll(context.Background())
			if srv.requests.Load() != before+1 {
				t.Fatalf("%d requests, want 1", srv.requests.Load()-before)
			}
			if blocks(t, f, "v1.example.com") != st.v1 || blocks(t, f, "v2.example.com") != st.v2 {
				t.Fatalf("v1 blocked %v, v2 blocked %v; want %v, %v", !st.v1, !st.v2, st.v1, st.v2)
			}
			s := f.Stats().Lists[0]
			if st.failed {
				failures++
			}
			if s.Failures != failures || st.failed != (s.LastError != "") || !strings.Contains(s.LastError, st.errText) {
				t.Fatalf("failures %d, last error %q; want %d, %q", s.Failures, s.LastError, failures, st.errText)
			}
			if s.LoadedAt.After(prev.LoadedAt) != st.loadedAgain || s.Malformed != st.malformedCount && st.loadedAgain {
				t.Fatalf("loaded at %v (before %v), malformed %d: want loaded again %v, malformed %d", s.LoadedAt, prev.LoadedAt, s.Malformed, st.loadedAgain, st.malformedCount)
			}
			if !s.LastAttempt.After(prev.LastAttempt) {
				t.Fatal("LastAttempt did not move")
			}
			prev = s
		})
	}
	warns := rec.Find("list not refreshed, keeping the version in use")
	if len(warns) != 3 || warns[0]["level"].String() != "WARN" || !strings.Contains(warns[0]["err"].String(), srv.URL) {
		t.Errorf("failure logs %v: want 3 warnings naming the URL", warns)
	}
	malformed := rec.Find("list has malformed lines, skipped them")
	if len(malformed) != 1 || malformed[0]["malformed"].Int64() != 1 || !strings.Contains(fmt.Sprint(malformed[0]["first"].Any()), `line 2: "bad!line"`) {
		t.Errorf("malformed logs %v: want the count and the line", malformed)
	}
}

func TestRefreshLoop(t *testing.T) {
	srv := newListServer(t, "v1.example.com\n")
	file := writeFile(t, t.TempDir(), "local.txt", "file1.example.com\n")
	// Count the fetches where they start: the server may see one the
	// client has already given up on.
	var fetches atomic.Int64
	f, _ := newFilter(t, Options{
		Blocklists: []string{srv.URL, file},
		Refresh:    20 * time.Millisecond,
		HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			fetches.Add(1)
			return http.DefaultTransport.RoundTrip(r)
		})},
	})
	f.Start(context.Background())
	srv.set(http.StatusOK, "v2.example.com\n")
	if err := os.WriteFile(file, []byte("file2.example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(pollTimeout)
	for !blocks(t, f, "v2.example.com") || !blocks(t, f, "file2.example.com") {
		if time.Now().After(deadline) {
			t.Fatalf("lists not refreshed within %v: %+v", pollTimeout, f.Stats())
		}
		time.Sleep(5 * time.Millisecond) // polling the loop's progress, not waiting for a period
	}
	if blocks(t, f, "v1.example.com") || blocks(t, f, "file1.example.com") {
		t.Fatal("old versions still block")
	}
	f.Stop()
	f.Stop() // twice is fine
	n := fetches.Load()
	time.Sleep(60 * time.Millisecond) // three periods: nothing may happen after Stop
	if fetches.Load() != n {
		t.Fatal("the list was fetched after Stop")
	}
	f.Start(context.Background()) // after Stop: does nothing
	time.Sleep(60 * time.Millisecond)
	if fetches.Load() != n {
		t.Fatal("Start after Stop restarted the loop")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestStopAbandonsDownload(t *testing.T) {
	release := make(chan struct{})
	hanging := make(chan struct{}, 1)
	var slow atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			select {
			case hanging <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		fmt.Fprintln(w, "ads.example.com")
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	f, _ := newFilter(t, Options{Blocklists: []string{srv.URL}, Refresh: time.Millisecond})
	f.refreshAll(context.Background())
	slow.Store(true)
	f.Start(context.Background())
	select {
	case <-hanging:
	case <-time.After(pollTimeout):
		t.Fatal("the loop did not fetch the list")
	}
	done := make(chan struct{})
	go func() { f.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(pollTimeout):
		t.Fatal("Stop waited for a hanging download")
	}
	if !blocks(t, f, "ads.example.com") {
		t.Fatal("the list in use was lost")
	}
}

// TestSwapUnderLoad runs queries while lists are swapped, for the race
// detector: loading never blocks or corrupts a query.
func TestSwapUnderLoad(t *testing.T) {
	srv := newListServer(t, "a.example.com\n")
	f, _ := newFilter(t, Options{Blocklists: []string{srv.URL}})
	mw := f.Middleware()(&upstream{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				q := new(dns.Msg).SetQuestion("www.a.example.com.", dns.TypeA)
				if _, err := mw.Resolve(ctx, resolver.NewRequest(q)); err != nil {
					t.Error(err)
					return
				}
				f.Stats()
			}
		}()
	}
	for i := range 20 {
		srv.set(http.StatusOK, fmt.Sprintf("a.example.com\nv%d.example.com\n", i))
		f.refreshAll(ctx)
	}
	cancel()
	wg.Wait()
	if !blocks(t, f, "v19.example.com") {
		t.Fatal("last version not in use")
	}
}
