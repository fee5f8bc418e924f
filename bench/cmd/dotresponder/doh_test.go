package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// testTimeout bounds every exchange of these tests.
const testTimeout = 5 * time.Second

// testTLS returns the responder's TLS config and a client config that
// trusts it, for the name dns.bench.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	ca := dottest.NewCA(t)
	leaf := ca.Leaf(t, "dns.bench")
	return &tls.Config{Certificates: []tls.Certificate{leaf}, NextProtos: []string{"dot"}},
		&tls.Config{RootCAs: ca.Pool, ServerName: "dns.bench"}
}

func testQuery(t *testing.T) []byte {
	t.Helper()
	q := new(dns.Msg).SetQuestion("q1.bench.example.", dns.TypeA) // ID 0, as DoH and DoQ clients send
	q.Id = 0
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

// checkAnswer checks that wire is the responder's answer to testQuery.
func checkAnswer(t *testing.T, wire []byte) {
	t.Helper()
	r := new(dns.Msg)
	if err := r.Unpack(wire); err != nil {
		t.Fatalf("unpacking the answer: %v", err)
	}
	if r.Id != 0 || !r.Response || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("answer:\n%v", r)
	}
}

func TestDoH(t *testing.T) {
	server, client := testTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := &counters{name: "doh test"}
	go serveDoH(ln, server, newAnswerer(netip.MustParseAddr("192.0.2.1"), 60), c)

	tr := &http.Transport{TLSClientConfig: client, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: testTimeout}
	base := "https://" + ln.Addr().String()
	tests := []struct {
		name, method, path, ctype string
		body                      []byte
		status                    int
	}{
		{"POST", http.MethodPost, dohPath, dohMediaType, testQuery(t), http.StatusOK},
		{"GET", http.MethodGet, dohPath + "?dns=" + base64.RawURLEncoding.EncodeToString(testQuery(t)), "", nil, http.StatusOK},
		{"GET without dns", http.MethodGet, dohPath, "", nil, http.StatusBadRequest},
		{"PUT", http.MethodPut, dohPath, "", testQuery(t), http.StatusMethodNotAllowed},
		{"other path", http.MethodPost, "/other", "", testQuery(t), http.StatusNotFound},
		{"not DNS", http.MethodPost, dohPath, "", []byte("hello"), http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", dohMediaType)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoMajor != 2 || resp.StatusCode != tt.status {
				t.Fatalf("%s %s, want HTTP/2 and %d", resp.Proto, resp.Status, tt.status)
			}
			if tt.status == http.StatusOK {
				if ct := resp.Header.Get("Content-Type"); ct != dohMediaType {
					t.Errorf("Content-Type %q", ct)
				}
				checkAnswer(t, body)
			}
		})
	}
	if c.queries.Load() != 2 || c.accepts.Load() != 1 || c.open.Load() != 1 {
		t.Errorf("counters: %d queries, %d accepts, %d open; want 2, 1, 1", c.queries.Load(), c.accepts.Load(), c.open.Load())
	}
}

func TestDoH3(t *testing.T) {
	server, client := testTLS(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	c := &counters{name: "h3 test"}
	go serveDoH3(pc, server, newAnswerer(netip.MustParseAddr("192.0.2.1"), 60), c)

	tr := &http3.Transport{TLSClientConfig: client}
	t.Cleanup(func() { tr.Close() })
	hc := &http.Client{Transport: tr, Timeout: testTimeout}
	const queries = 3
	for range queries {
		resp, err := hc.Post("https://"+pc.LocalAddr().String()+dohPath, dohMediaType, bytes.NewReader(testQuery(t)))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 3 || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != dohMediaType {
			t.Fatalf("%s %s, Content-Type %q; want HTTP/3, 200, %s", resp.Proto, resp.Status, resp.Header.Get("Content-Type"), dohMediaType)
		}
		checkAnswer(t, body)
	}
	if c.queries.Load() != queries || c.accepts.Load() != 1 || c.open.Load() != 1 {
		t.Errorf("counters: %d queries, %d accepts, %d open; want %d, 1, 1", c.queries.Load(), c.accepts.Load(), c.open.Load(), queries)
	}
}

func TestDoQ(t *testing.T) {
	server, client := testTLS(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	c := &counters{name: "doq test"}
	go serveDoQ(pc, server, newAnswerer(netip.MustParseAddr("192.0.2.1"), 60), c)

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	client.NextProtos = []string{doqALPN}
	conn, err := quic.DialAddr(ctx, pc.LocalAddr().String(), client, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(doqNoError, "") })
	const queries = 3
	for range queries {
		s, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.SetDeadline(time.Now().Add(testTimeout))
		q := testQuery(t)
		if _, err := s.Write(binary.BigEndian.AppendUint16(nil, uint16(len(q)))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(q); err != nil {
			t.Fatal(err)
		}
		s.Close() // the query's end (FIN), as RFC 9250 asks
		out, err := io.ReadAll(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) < 2 || int(binary.BigEndian.Uint16(out)) != len(out)-2 {
			t.Fatalf("answer %x: not one length-prefixed message", out)
		}
		checkAnswer(t, out[2:])
	}
	if c.queries.Load() != queries || c.accepts.Load() != 1 || c.open.Load() != 1 {
		t.Errorf("counters: %d queries, %d accepts, %d open; want %d, 1, 1", c.queries.Load(), c.accepts.Load(), c.open.Load(), queries)
	}
}
