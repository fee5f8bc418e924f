package filter

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOnDiskCopy(t *testing.T) {
	dir := t.TempDir()
	srv := newListServer(t, "cached.example.com\n")
	url := srv.URL + "/hosts.txt"

	// A first run downloads the list and keeps a copy.
	f1, _ := newFilter(t, Options{Blocklists: []string{url}, CacheDir: filepath.Join(dir, "lists")})
	f1.refreshAll(context.Background())
	if s := f1.Stats().Lists[0]; s.FromCache || s.Rules != 1 {
		t.Fatalf("first run: %+v", s)
	}
	copies, _ := filepath.Glob(filepath.Join(dir, "lists", "127.0.0.1-*.list"))
	if len(copies) != 1 {
		t.Fatalf("on-disk copies %v, want one", copies)
	}

	// A restart without the server filters from the copy, without asking.
	srv.set(http.StatusInternalServerError, "")
	before := srv.requests.Load()
	f2, _ := newFilter(t, Options{Blocklists: []string{url}, CacheDir: filepath.Join(dir, "lists"), Refresh: 20 * time.Millisecond})
	if srv.requests.Load() != before {
		t.Fatal("New fetched a list that has an on-disk copy")
	}
	if s := f2.Stats().Lists[0]; !s.FromCache || !blocks(t, f2, "www.cached.example.com") {
		t.Fatalf("restart without network: %+v", s)
	}
	// Start fetches it at once; the failure keeps the copy in use.
	f2.Start(context.Background())
	deadline := time.Now().Add(pollTimeout)
	for f2.Stats().Lists[0].Failures == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Start did not try to fetch the list")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !blocks(t, f2, "cached.example.com") {
		t.Fatal("a failed fetch dropped the on-disk version")
	}
	f2.Stop()

	// A failed download does not touch the copy.
	data, err := os.ReadFile(copies[0])
	if err != nil || string(data) != "cached.example.com\n" {
		t.Fatalf("copy now %q, %v", data, err)
	}

	// No copy and no server: the list is pending, and the failure says why.
	f4, _ := newFilter(t, Options{Blocklists: []string{url}, CacheDir: t.TempDir()})
	f4.refreshAll(context.Background())
	if s := f4.Stats().Lists[0]; !s.Pending || !strings.Contains(s.LastError, "500") {
		t.Fatalf("without a copy: %+v", s)
	}

	// An unusable copy (garbage written by hand) is replaced by a download.
	if err := os.WriteFile(copies[0], []byte("<html>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.set(http.StatusOK, "fresh.example.com\n")
	f3, rec := newFilter(t, Options{Blocklists: []string{url}, CacheDir: filepath.Join(dir, "lists")})
	f3.refreshAll(context.Background())
	if !blocks(t, f3, "fresh.example.com") || len(rec.Find("on-disk copy of the list is unusable, fetching it")) != 1 {
		t.Fatal("an unusable copy was not replaced by a download")
	}
	if data, _ := os.ReadFile(copies[0]); string(data) != "fresh.example.com\n" {
		t.Fatalf("copy not rewritten: %q", data)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "lists", ".download-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestNoListStopsStart: a list that cannot be loaded (no network, a
// 404, an HTML page, a missing file) never fails New, which waits on no
// network: the list is pending, the filter answers without it, and the
// try's error says why. Only a source that can never work fails New.
func TestNoListStopsStart(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	missing := filepath.Join(t.TempDir(), "missing.txt")
	html := newListServer(t, "<html><body>captive portal</body></html>")
	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notFound.Close)
	hang := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hanging.Close)
	t.Cleanup(func() { close(hang) })
	for _, tc := range []struct {
		name   string
		source string
		want   []string // in the list's LastError after one try; nil: do not try
	}{
		{"missing file", missing, []string{missing, "no such file"}},
		{"unreachable URL", closed.URL + "/list", []string{closed.URL, "connection refused"}},
		{"not found", notFound.URL + "/nope", []string{"/nope", "404 Not Found"}},
		{"html", html.URL, []string{html.URL, "HTML"}},
		{"hanging server", hanging.URL, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, rec := newFilter(t, Options{Blocklists: []string{tc.source}, CacheDir: t.TempDir()})
			if p := f.Pending(); len(p) != 1 || f.Ready() != nil {
				t.Fatalf("pending %v, ready %v: want the list pending, and ready", p, f.Ready())
			}
			if blocks(t, f, "www.example.com") {
				t.Fatal("a pending list blocks")
			}
			if tc.want == nil {
				return
			}
			f.refreshAll(context.Background())
			s := f.Stats().Lists[0]
			for _, w := range tc.want {
				if !strings.Contains(s.LastError, w) {
					t.Errorf("error %q does not say %q", s.LastError, w)
				}
			}
			if !s.Pending || len(rec.Find("list not loaded yet, filtering without it; trying again")) != 1 {
				t.Errorf("after a failed try: %+v", s)
			}
		})
	}
	for _, tc := range []struct{ name, source, want string }{
		{"bad scheme", "ftp://lists.example/ads.txt", "http(s)"},
		{"empty source", " ", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Blocklists: []string{tc.source}, BlockResponse: "bogus"})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bogus") {
				t.Fatalf("New: %v; want both problems", err)
			}
		})
	}
}

// TestRequired: with Required, the filter is not ready while a list is
// pending, and is once it has loaded.
func TestRequired(t *testing.T) {
	srv := newListServer(t, "ads.example.com\n")
	srv.set(http.StatusServiceUnavailable, "")
	file := writeFile(t, t.TempDir(), "local.txt", "file.example.com\n")
	f, _ := newFilter(t, Options{Blocklists: []string{file, srv.URL}, Required: true})
	if err := f.Ready(); !errors.Is(err, ErrListsPending) || !strings.Contains(err.Error(), srv.URL) ||
		strings.Contains(err.Error(), file) {
		t.Fatalf("Ready with the URL list pending: %v", err)
	}
	srv.set(http.StatusOK, "ads.example.com\n")
	f.Start(context.Background())
	deadline := time.Now().Add(pollTimeout)
	for f.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", f.Ready())
		}
		time.Sleep(5 * time.Millisecond) // polling the loop's progress
	}
	if !blocks(t, f, "ads.example.com") || len(f.Pending()) != 0 {
		t.Fatal("ready, but the list does not block")
	}
}

// TestBackoff: a failing list is tried again sooner than Refresh, later
// after each failure in a row, never later than retryInterval.
func TestBackoff(t *testing.T) {
	f := &Filter{refresh: DefaultRefresh}
	want := []time.Duration{DefaultRefresh, 5 * time.Second, 10 * time.Second, 20 * time.Second}
	for failed, w := range want {
		if got := f.nextTry(failed); got != w {
			t.Errorf("nextTry(%d) = %v, want %v", failed, got, w)
		}
	}
	if got := f.nextTry(40); got != retryInterval {
		t.Errorf("nextTry(40) = %v, want %v", got, retryInterval)
	}
	f.refresh = time.Second
	if got := f.nextTry(3); got != time.Second {
		t.Errorf("with a short refresh: %v", got)
	}
}

// TestPreviousLists: a filter built for a reload takes over the lists
// its predecessor has loaded, so a reload never filters less.
func TestPreviousLists(t *testing.T) {
	srv := newListServer(t, "ads.example.com\n")
	old, _ := newFilter(t, Options{Blocklists: []string{srv.URL}})
	old.refreshAll(context.Background())
	srv.set(http.StatusServiceUnavailable, "")
	other := newListServer(t, "more.example.com\n")
	f, _ := newFilter(t, Options{Blocklists: []string{srv.URL, other.URL}, Previous: old})
	if !blocks(t, f, "ads.example.com") {
		t.Fatal("the kept list does not block in the new filter")
	}
	if p := f.Pending(); len(p) != 1 || p[0] != other.URL {
		t.Fatalf("pending %v, want only the new list", p)
	}
}
