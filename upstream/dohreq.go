package upstream

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/miekg/dns"
)

// dohAnswer is what a DoH server sent back for a query: the parts
// doh.post checks.
type dohAnswer struct {
	status      int
	contentType string
	body        []byte // at most dns.MaxMsgSize+1 octets: a longer one shows
	// msg is body unpacked, or unpackErr why it was not, once unpack
	// has run; both nil before.
	msg       *dns.Msg
	unpackErr error
}

// unpack unpacks the body of a 200 response of the DNS media type and
// acceptable length, for doh.post to check.
func (a *dohAnswer) unpack() {
	if a.status != http.StatusOK || !isDNSMessage(a.contentType) || checkDNSBody(len(a.body)) != nil {
		return
	}
	m := new(dns.Msg)
	if err := m.Unpack(a.body); err != nil {
		a.unpackErr = err
		return
	}
	a.msg = m
}

// dohHeader holds an HTTP/3 query's header fields: only what RFC 8484
// needs. An empty User-Agent is the way to keep the HTTP library from
// sending its own: it would tell the resolver which software asks.
// Every request shares it, read-only: the HTTP/3 client only reads a
// request's header. (HTTP/2 requests are encoded in h2Conn.writeHeaders
// with the same fields.)
var dohHeader = http.Header{
	"Content-Type": {dohMediaType},
	"Accept":       {dohMediaType},
	"User-Agent":   {""},
}

// newRequest is the POST of the query wire to u (RFC 8484 §4.1), with
// its length known so that the body goes out in one DATA frame that ends
// the stream.
func newRequest(ctx context.Context, u *url.URL, wire []byte) *http.Request {
	uc := *u
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           &uc,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        dohHeader,
		Body:          io.NopCloser(bytes.NewReader(wire)),
		ContentLength: int64(len(wire)),
		Host:          uc.Host,
	}
	return req.WithContext(ctx)
}

// roundTrip posts wire with rt and reads the response.
func roundTrip(ctx context.Context, rt http.RoundTripper, u *url.URL, wire []byte) (dohAnswer, error) {
	resp, err := rt.RoundTrip(newRequest(ctx, u, wire))
	if err != nil {
		return dohAnswer{}, err
	}
	defer resp.Body.Close()
	ans := dohAnswer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type")}
	if ans.status != http.StatusOK {
		return ans, nil
	}
	ans.body, err = io.ReadAll(io.LimitReader(resp.Body, dns.MaxMsgSize+1))
	return ans, err
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
