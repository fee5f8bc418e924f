package filter

import (
	"context"
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

	// No copy and no server: New fails, naming the URL.
	_, err = New(Options{Blocklists: []string{url}, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "500") {
		t.Fatalf("New without a copy: %v", err)
	}

	// An unusable copy (garbage written by hand) is replaced by a download.
	if err := os.WriteFile(copies[0], []byte("<html>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.set(http.StatusOK, "fresh.example.com\n")
	f3, rec := newFilter(t, Options{Blocklists: []string{url}, CacheDir: filepath.Join(dir, "lists")})
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

func TestLoadErrorsAtStart(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	missing := filepath.Join(t.TempDir(), "missing.txt")
	html := newListServer(t, "<html><body>captive portal</body></html>")
	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notFound.Close)
	for _, tc := range []struct {
		name   string
		source string
		want   []string
	}{
		{"missing file", missing, []string{missing, "no such file"}},
		{"unreachable URL", closed.URL + "/list", []string{closed.URL, "connection refused"}},
		{"not found", notFound.URL + "/nope", []string{"/nope", "404 Not Found"}},
		{"html", html.URL, []string{html.URL, "HTML"}},
		{"bad scheme", "ftp://lists.example/ads.txt", []string{"ftp://", "http(s)"}},
		{"empty source", " ", []string{"empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Blocklists: []string{tc.source}, CacheDir: t.TempDir()})
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	t.Run("every failure reported", func(t *testing.T) {
		_, err := New(Options{Blocklists: []string{missing, closed.URL}, BlockResponse: "bogus"})
		if err == nil || !strings.Contains(err.Error(), "bogus") {
			t.Fatalf("New: %v", err)
		}
		_, err = New(Options{Blocklists: []string{missing, closed.URL}})
		if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), closed.URL) {
			t.Fatalf("New: %v", err)
		}
	})
}
