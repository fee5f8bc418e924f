package upstream

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// dohTransports are the transports a DoH test runs over.
var dohTransports = []Transport{HTTPS, HTTP3}

// startDoH starts a DoH server for transport with a certificate from ca
// for testTLSName.
func startDoH(t *testing.T, ca *dottest.CA, transport Transport, h dottest.Handler) *dottest.DoHServer {
	t.Helper()
	return dottest.StartDoH(t, dottest.DoHOptions{Cert: ca.Leaf(t, testTLSName), Handler: h, HTTP3: transport == HTTP3})
}

// newDoHUpstream builds an Upstream for srv trusting ca, with opts' other
// fields as given.
func newDoHUpstream(t *testing.T, ca *dottest.CA, srv *dottest.DoHServer, opts Options) *Upstream {
	t.Helper()
	opts.Transport = HTTPS
	if srv.HTTP3() {
		opts.Transport = HTTP3
	}
	if opts.Name == "" {
		opts.Name = opts.Transport.String()
	}
	return newUpstreamAt(t, ca, srv.Addr(), opts)
}

// TestDoHRoundTrip: a query goes out as RFC 8484 asks and no more — a
// POST of the padded query with ID 0, the media type both ways, no
// User-Agent or anything else that tells who asks — and its answer comes
// back with the client's ID.
func TestDoHRoundTrip(t *testing.T) {
	for _, tr := range dohTransports {
		t.Run(tr.String(), func(t *testing.T) {
			var logs syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ca := dottest.NewCA(t)
			srv := startDoH(t, ca, tr, dottest.Answer("192.0.2.7"))
			u := newDoHUpstream(t, ca, srv, Options{Logger: log})

			q := query("www.example.", dns.TypeA)
			q.Id = 0x1234
			r, err := u.Exchange(ctxFor(t, testTimeout), q)
			if err != nil {
				t.Fatal(err)
			}
			if r.Id != 0x1234 {
				t.Errorf("answer ID %#x, want the client's 0x1234", r.Id)
			}
			if got := addrOf(t, r); got != netip.MustParseAddr("192.0.2.7") {
				t.Errorf("answer %v, want 192.0.2.7", got)
			}

			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("server got %d requests, want 1", len(reqs))
			}
			req := reqs[0]
			wantProto := map[Transport]string{HTTPS: "HTTP/2.0", HTTP3: "HTTP/3.0"}[tr]
			wantHost := testTLSName + ":" + strconv.Itoa(int(srv.Addr().Port()))
			if req.Method != http.MethodPost || req.Path != dottest.DoHPath || req.Proto != wantProto || req.Host != wantHost {
				t.Errorf("request %s %s %s to %s, want POST %s %s to %s",
					req.Method, req.Path, req.Proto, req.Host, dottest.DoHPath, wantProto, wantHost)
			}
			allowed := map[string]string{"Content-Type": dohMediaType, "Accept": dohMediaType, "Content-Length": ""}
			for k, v := range req.Header {
				want, ok := allowed[k]
				switch {
				case !ok:
					t.Errorf("header %s: %q sent", k, v)
				case want != "" && (len(v) != 1 || v[0] != want):
					t.Errorf("header %s: %q, want %q", k, v, want)
				}
			}
			for _, k := range []string{"Content-Type", "Accept"} {
				if req.Header.Get(k) == "" {
					t.Errorf("no %s header", k)
				}
			}
			if id := binary.BigEndian.Uint16(req.Body); id != 0 {
				t.Errorf("query ID %#x on the wire, want 0", id)
			}
			if srv.Padded() != 1 || len(req.Body)%paddingBlock != 0 {
				t.Errorf("query of %d octets not padded to a %d-octet block", len(req.Body), paddingBlock)
			}

			st := u.Stats()
			if st.Answers != 1 || st.Errors.Total() != 0 || st.OpenConns != 1 || st.Transport != tr.String() {
				t.Errorf("stats %+v, want one answer on one %s connection", st, tr)
			}
			wantLog := map[Transport]string{HTTPS: "http=HTTP/2", HTTP3: "http=HTTP/3"}[tr]
			if !strings.Contains(logs.String(), `msg="query sent" upstream=`+tr.String()+" qname=www.example. qtype=A "+wantLog) {
				t.Errorf("no query sent line with %s in the Debug log:\n%s", wantLog, logs.String())
			}
		})
	}
}

// TestDoHBadResponses: a response that is not a DNS answer to the query
// is an error, counted as a bad answer, that names the upstream and not
// the query.
func TestDoHBadResponses(t *testing.T) {
	tests := []struct {
		name    string
		resp    dottest.Response
		handler dottest.Handler
		want    string
	}{
		{name: "status 502", resp: dottest.Response{Status: http.StatusBadGateway}, want: "status 502"},
		{name: "status 415", resp: dottest.Response{Status: http.StatusUnsupportedMediaType}, want: "status 415"},
		{name: "HTML", resp: dottest.Response{ContentType: "text/html"}, want: `content type "text/html"`},
		{name: "unknown content type", resp: dottest.Response{ContentType: "application/octet-stream"}, want: "content type"},
		{name: "garbage body", resp: dottest.Response{Body: []byte("<html>oops</html>")}, want: "invalid answer"},
		{name: "empty body", resp: dottest.Response{Body: []byte{}}, want: "invalid answer"},
		{name: "another question", handler: func(q *dns.Msg, reply func(*dns.Msg)) {
			reply(dottest.AnswerMsg(query("other.example.", dns.TypeA), netip.MustParseAddr("192.0.2.1")))
		}, want: "does not match"},
	}
	for _, tr := range dohTransports {
		for _, tt := range tests {
			t.Run(tr.String()+"/"+tt.name, func(t *testing.T) {
				ca := dottest.NewCA(t)
				srv := startDoH(t, ca, tr, tt.handler)
				srv.SetResponse(tt.resp)
				u := newDoHUpstream(t, ca, srv, Options{})
				_, err := u.Exchange(ctxFor(t, testTimeout), query(secretName(1), dns.TypeA))
				if err == nil {
					t.Fatal("no error")
				}
				prefix := tr.String() + " " + srv.Addr().String() + ": "
				if !strings.Contains(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %q, want %q after %q", err, tt.want, prefix)
				}
				if !errors.Is(err, ErrBadAnswer) {
					t.Errorf("error %q is not ErrBadAnswer", err)
				}
				st := u.Stats()
				if st.Errors[ErrorBadAnswer] != 1 || st.Errors.Total() != 1 || st.Answers != 0 {
					t.Errorf("errors %v, answers %d: want one bad answer", st.Errors, st.Answers)
				}
				if strings.Contains(st.LastError, "secret") {
					t.Errorf("last error names the query: %q", st.LastError)
				}
				// The connection stays: a bad answer is the resolver's
				// doing, not the connection's.
				srv.SetResponse(dottest.Response{})
				srv.SetHandler(dottest.Answer("192.0.2.1"))
				if _, err := u.Exchange(ctxFor(t, testTimeout), query("www.example.", dns.TypeA)); err != nil {
					t.Fatal(err)
				}
				if n := srv.Accepts(); n != 1 {
					t.Errorf("%d connections accepted, want 1", n)
				}
			})
		}
	}
}

// TestDoHVerification: a server whose certificate does not check out, or
// that does not speak HTTP/2, is never sent a query.
func TestDoHVerification(t *testing.T) {
	ca := dottest.NewCA(t)
	other := dottest.NewCA(t)
	good := ca.Leaf(t, testTLSName)
	tests := []struct {
		name      string
		cert      tls.Certificate
		pins      [][]byte
		http1Only bool
		wantErr   bool
	}{
		{name: "valid", cert: good},
		{name: "valid, pin matches", cert: good, pins: [][]byte{dottest.SPKIPin(good)}},
		{name: "certificate for another name", cert: ca.Leaf(t, "other.test"), wantErr: true},
		{name: "CA not trusted", cert: other.Leaf(t, testTLSName), wantErr: true},
		{name: "pin mismatch", cert: good, pins: [][]byte{dottest.SPKIPin(other.Leaf(t, testTLSName))}, wantErr: true},
		{name: "HTTP/1.1 only", cert: good, http1Only: true, wantErr: true},
	}
	for _, tr := range dohTransports {
		for _, tt := range tests {
			if tt.http1Only && tr == HTTP3 {
				continue
			}
			t.Run(tr.String()+"/"+tt.name, func(t *testing.T) {
				srv := dottest.StartDoH(t, dottest.DoHOptions{Cert: tt.cert, HTTP3: tr == HTTP3, HTTP1Only: tt.http1Only})
				u := newDoHUpstream(t, ca, srv, Options{SPKIPins: tt.pins})
				_, err := u.Exchange(ctxFor(t, testTimeout), query("www.example.", dns.TypeA))
				if !tt.wantErr {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				if err == nil {
					t.Fatal("query answered over an unverified connection")
				}
				t.Logf("refused: %v", err)
				if n := len(srv.Requests()); n != 0 {
					t.Errorf("server got %d requests over an unverified connection", n)
				}
				if k := u.Stats().Errors; k[ErrorTLS] != 1 {
					t.Errorf("errors %v, want one TLS error", k)
				}
			})
		}
	}
}

// TestDoHURL: the URL's authority is the TLS name, with the port unless
// it is 443, and the path as configured.
func TestDoHURL(t *testing.T) {
	tests := []struct {
		name, tlsName, path string
		addr                netip.AddrPort
		port                uint16
		want                string
		wantErr             bool
	}{
		{name: "default port", tlsName: "dns.example", path: "/dns-query", addr: netip.MustParseAddrPort("192.0.2.1:443"),
			want: "https://dns.example/dns-query"},
		{name: "other port", tlsName: "dns.example", path: "/dns-query", addr: netip.MustParseAddrPort("192.0.2.1:8443"),
			want: "https://dns.example:8443/dns-query"},
		{name: "host name's port", tlsName: "dns.example", path: "/q", port: 443, want: "https://dns.example/q"},
		{name: "path with a query", tlsName: "dns.example", path: "/resolve?ct=1", port: 443,
			want: "https://dns.example/resolve?ct=1"},
		{name: "IPv6 name", tlsName: "2001:db8::1", path: "/dns-query", port: 443, want: "https://[2001:db8::1]/dns-query"},
		{name: "IPv6 name, other port", tlsName: "2001:db8::1", path: "/dns-query", port: 8443,
			want: "https://[2001:db8::1]:8443/dns-query"},
		{name: "relative path", tlsName: "dns.example", path: "dns-query", port: 443, wantErr: true},
		{name: "bad escape", tlsName: "dns.example", path: "/%zz", port: 443, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dohURL(Options{TLSName: tt.tlsName, Path: tt.path, Addr: tt.addr, Port: tt.port})
			if tt.wantErr {
				if err == nil {
					t.Errorf("URL %q, want an error", got)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("got %v, %v; want %q", got, err, tt.want)
			}
		})
	}
}
