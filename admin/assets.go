package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"time"
)

// assetFS holds the page's template and the files it loads. Everything
// the page needs is in the binary: no CDN, no web fonts.
//
//go:embed assets
var assetFS embed.FS

// asset is one static file served under /assets/.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets are the files served under /assets/, by name. The template
// (index.html) is not among them: it is only ever rendered.
var assets = loadAssets(map[string]string{
	"style.css":   "text/css; charset=utf-8",
	"status.js":   "text/javascript; charset=utf-8",
	"favicon.svg": "image/svg+xml",
})

// loadAssets reads the named files from assetFS, with an ETag each from
// its content so a browser revalidates rather than downloads again.
func loadAssets(types map[string]string) map[string]asset {
	m := make(map[string]asset, len(types))
	for name, ct := range types {
		b, err := assetFS.ReadFile(path.Join("assets", name))
		if err != nil {
			panic("admin: embedded asset missing: " + err.Error())
		}
		sum := sha256.Sum256(b)
		m[name] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return m
}

// serveAsset serves /assets/{name}. They change only with the binary, so
// they may be cached, but are revalidated (by ETag) on every use: after
// an upgrade the page never runs an old script against a new API.
func serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
