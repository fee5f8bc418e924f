package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Response headers set on every answer.
const (
	// contentSecurityPolicy lets the page load only its own embedded
	// script, style and icon: no inline script, no other origin. The
	// directives that do not fall back to default-src are closed too,
	// so the page cannot be framed (clickjacking) or re-based.
	contentSecurityPolicy = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	// allowedMethods is every method the admin listener answers.
	allowedMethods = "GET, HEAD"
)

// handler is the whole HTTP surface: security headers, the method check
// and the Host check in front of the routes.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics())
	mux.HandleFunc("GET /api/status", s.apiStatus)
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /assets/{name}", serveAsset)
	return secure(s.checkHost(mux))
}

// secure sets the headers every response carries and refuses every
// method but GET and HEAD: nothing here changes state, so nothing needs
// another method, and a cross-site form post gets nowhere.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", allowedMethods)
			http.Error(w, "method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// healthz answers 200 for as long as the process serves HTTP: a liveness
// probe, which says nothing about the upstreams.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	noStore(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz answers 200 when Options.Ready says the proxy can answer
// queries, 503 with its reason when it cannot: a readiness probe. A 200
// names the filter lists still loading, if any.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	noStore(w)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.opts.Ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready: " + err.Error() + "\n"))
		return
	}
	w.Write([]byte("ready\n"))
	if st := s.opts.Status(); st.Filter != nil && len(st.Filter.Pending) > 0 {
		// Ready all the same: the lists are not required, and DNS is
		// answered without them until they load.
		w.Write([]byte("filter lists still loading: " + strings.Join(st.Filter.Pending, ", ") + "\n"))
	}
}

// metrics is Options.Metrics, or 404 when there is none.
func (s *Server) metrics() http.Handler {
	if s.opts.Metrics == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "metrics are not enabled", http.StatusNotFound)
		})
	}
	return s.opts.Metrics
}

// apiStatus writes a fresh snapshot as JSON (fields in Status' doc).
func (s *Server) apiStatus(w http.ResponseWriter, _ *http.Request) {
	st := s.snapshot()
	noStore(w)
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if err := enc.Encode(st); err != nil {
		s.log.Warn("admin: writing status", "err", err)
	}
}

// snapshot calls Options.Status and fills in what the JSON and the page
// rely on: the snapshot's time, and an empty list rather than null.
func (s *Server) snapshot() Status {
	st := s.opts.Status()
	if st.Time.IsZero() {
		st.Time = time.Now()
	}
	if st.Upstreams == nil {
		st.Upstreams = []UpstreamStatus{}
	}
	if st.Clients == nil {
		st.Clients = []ClientStatus{}
	}
	return st
}

// noStore keeps browsers and proxies from caching a live figure.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}
