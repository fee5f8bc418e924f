package filter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// errNotModified is an HTTP 304: the version in use is current.
var errNotModified = errors.New("not modified")

// validators are an HTTP response's ETag and Last-Modified, sent back
// with the next request so that an unchanged list is not downloaded (or
// written to disk) again.
type validators struct{ etag, lastModified string }

// parseFile parses the list in the file at path.
func parseFile(path string, allow bool) (*parsed, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	p, err := parse(fh, allow)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return p, nil
}

// fetch reads the list from its source. A URL's body is parsed as it
// arrives and, when it parses, kept as the on-disk copy.
func (l *list) fetch(ctx context.Context, f *Filter) (*parsed, validators, error) {
	if !l.isURL {
		p, err := parseFile(l.source, l.allow)
		return p, validators{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.source, nil)
	if err != nil {
		return nil, validators{}, err
	}
	req.Header.Set("User-Agent", "dotproxy")
	inUse := l.table.Load() != nil
	if inUse && l.etag != "" {
		req.Header.Set("If-None-Match", l.etag)
	}
	if inUse && l.lastModified != "" {
		req.Header.Set("If-Modified-Since", l.lastModified)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, validators{}, err // it names the method and URL
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && inUse:
		return nil, validators{}, errNotModified
	case resp.StatusCode != http.StatusOK:
		return nil, validators{}, fmt.Errorf("GET %s: %s", ListName(l.source), resp.Status)
	}
	v := validators{etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}

	cw := f.newCacheWriter(l)
	var body io.Reader = resp.Body
	if cw != nil {
		body = io.TeeReader(resp.Body, cw)
	}
	p, err := parse(body, l.allow)
	if err != nil {
		cw.discard()
		return nil, validators{}, fmt.Errorf("GET %s: %w", ListName(l.source), err)
	}
	if err := cw.commit(); err != nil {
		f.log.Warn("could not keep the list's last good copy on disk", "list", ListName(l.source), "err", err)
	}
	return p, v, nil
}

// cacheFile names a URL's on-disk copy in dir: readable, and unique per
// URL.
func cacheFile(dir, source string) string {
	host := "list"
	if u, err := url.Parse(source); err == nil && u.Hostname() != "" {
		host = strings.Map(func(r rune) rune {
			if r == '.' || r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return '_'
		}, strings.ToLower(u.Hostname()))
	}
	sum := sha256.Sum256([]byte(source))
	return filepath.Join(dir, host+"-"+hex.EncodeToString(sum[:8])+".list")
}

// cacheWriter writes a download to a temporary file beside the list's
// on-disk copy, and replaces the copy with it once the download has
// parsed. A write error (a full disk) stops the copy, not the download.
type cacheWriter struct {
	tmp  *os.File
	path string
	err  error
}

// newCacheWriter returns a writer for l's copy, or nil when l has none or
// the file cannot be created (logged).
func (f *Filter) newCacheWriter(l *list) *cacheWriter {
	if l.cache == "" {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(l.cache), ".download-*")
	if err != nil {
		f.log.Warn("could not keep the list's last good copy on disk", "list", ListName(l.source), "err", err)
		return nil
	}
	return &cacheWriter{tmp: tmp, path: l.cache}
}

func (c *cacheWriter) Write(p []byte) (int, error) {
	if c.err == nil {
		_, c.err = c.tmp.Write(p)
	}
	return len(p), nil
}

// commit makes the written copy the list's on-disk copy: synced first,
// so that a power cut leaves the old copy or the new, never half of one.
func (c *cacheWriter) commit() error {
	if c == nil {
		return nil
	}
	err := c.err
	if err == nil {
		err = c.tmp.Sync()
	}
	if cerr := c.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(c.tmp.Name(), c.path)
	}
	if err != nil {
		os.Remove(c.tmp.Name())
	}
	return err
}

func (c *cacheWriter) discard() {
	if c != nil {
		c.tmp.Close()
		os.Remove(c.tmp.Name())
	}
}
