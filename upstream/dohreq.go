package upstream

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"

	"github.com/miekg/dns"
)

// dohHeader holds a query's header fields: only what RFC 8484 needs. An
// empty User-Agent is the way to keep the HTTP libraries from sending
// their own: it would tell the resolver which software asks. Every
// request shares it, read-only: the HTTP/2 and HTTP/3 clients only read
// a request's header.
var dohHeader = http.Header{
	"Content-Type": {dohMediaType},
	"Accept":       {dohMediaType},
	"User-Agent":   {""},
}

// newRequest is the POST of the query wire (RFC 8484 §4.1), built from
// the URL parsed once, with its length known so that the body goes out
// in one DATA frame that ends the stream.
func (d *doh) newRequest(ctx context.Context, wire []byte) *http.Request {
	u := *d.url
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           &u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        dohHeader,
		Body:          io.NopCloser(bytes.NewReader(wire)),
		ContentLength: int64(len(wire)),
		Host:          u.Host,
	}
	return req.WithContext(ctx)
}

// isDNSMessage reports whether a response's Content-Type is
// application/dns-message, parameters and case aside; the exact string,
// what resolvers send, is taken without parsing.
func isDNSMessage(ct string) bool {
	if ct == dohMediaType {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == dohMediaType
}

// readBody reads a response's body, up to one octet more than a DNS
// message may have, so that a longer one shows.
func readBody(resp *http.Response) ([]byte, error) {
	return io.ReadAll(io.LimitReader(resp.Body, dns.MaxMsgSize+1))
}
