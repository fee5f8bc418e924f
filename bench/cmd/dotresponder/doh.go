package main

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
)

const (
	// dohPath is where the responder answers DNS over HTTPS: RFC 8484's
	// example, and every DoH client's default here.
	dohPath = "/dns-query"
	// dohMediaType is RFC 8484's, of the query and of the answer.
	dohMediaType = "application/dns-message"
	// maxMsgSize bounds a query's body: the largest DNS message.
	maxMsgSize = 65535
	// maxDoHStreams is how many requests one client may have in flight on
	// one HTTP/2 connection: more than any peer under test keeps, so that
	// the responder never holds one back (Go's own default is 250).
	maxDoHStreams = 1000
)

// dohHeader is the answer's one header, shared by every answer: set
// whole, without the canonicalisation Header.Set does per call.
var dohHeader = []string{dohMediaType}

// bufPool holds query and answer buffers across requests, which each run
// in their own goroutine.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// serveDoH answers DNS over HTTPS on ln: HTTP/2 only, as the DoH clients
// under test speak it, a POST with an application/dns-message body or a
// GET with the query in its dns parameter (RFC 8484 section 4.1), with
// the answer of a. It returns when ln is closed.
func serveDoH(ln net.Listener, conf *tls.Config, a answerer, c *counters) {
	tc := conf.Clone()
	tc.NextProtos = nil // ServeTLS sets h2
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	srv := &http.Server{
		Handler:   &dohHandler{a: a, c: c},
		TLSConfig: tc,
		Protocols: &protocols,
		HTTP2:     &http.HTTP2Config{MaxConcurrentStreams: maxDoHStreams},
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				c.accepts.Add(1)
				c.open.Add(1)
			case http.StateClosed, http.StateHijacked:
				c.open.Add(-1)
			}
		},
	}
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Printf("%s: %v", c.name, err)
	}
}

// dohHandler answers one DoH request.
type dohHandler struct {
	a answerer
	c *counters
}

func (h *dohHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != dohPath {
		http.NotFound(w, r)
		return
	}
	qb, ab := bufPool.Get().(*[]byte), bufPool.Get().(*[]byte)
	defer bufPool.Put(qb)
	defer bufPool.Put(ab)
	var q []byte
	var err error
	switch r.Method {
	case http.MethodPost:
		q, err = readBody(r.Body, (*qb)[:0])
	case http.MethodGet:
		// base64url without padding (RFC 8484 section 6).
		q, err = base64.RawURLEncoding.AppendDecode((*qb)[:0], []byte(r.URL.Query().Get("dns")))
	default:
		http.Error(w, "GET or POST only", http.StatusMethodNotAllowed)
		return
	}
	*qb = q[:0]
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out := h.a.appendAnswer((*ab)[:0], q)
	*ab = out[:0]
	if len(out) == 0 {
		http.Error(w, "not a DNS query", http.StatusBadRequest)
		return
	}
	w.Header()["Content-Type"] = dohHeader
	if _, err := w.Write(out); err == nil {
		h.c.queries.Add(1)
	}
}

// readBody appends body to buf, up to maxMsgSize octets.
func readBody(body io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			if len(buf) > maxMsgSize {
				return buf, errors.New("body larger than a DNS message")
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
