package upstream

import (
	"bytes"
	"context"
	"fmt"
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
}

// message is the DNS answer a response carries, checked against the
// question q: a 200 of the DNS media type with a message to it, or an
// ErrBadAnswer that says what came instead.
func (a dohAnswer) message(q dns.Question) (*dns.Msg, error) {
	switch {
	case a.status != http.StatusOK:
		return nil, fmt.Errorf("%w: status %d", ErrBadAnswer, a.status)
	case !isDNSMessage(a.contentType):
		return nil, fmt.Errorf("%w: content type %q", ErrBadAnswer, a.contentType)
	}
	if err := checkDNSBody(len(a.body)); err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	if err := m.Unpack(a.body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	if err := checkAnswer(m, q); err != nil {
		return nil, err
	}
	return m, nil
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

// checkDNSBody bounds an answer's body as it comes: a DNS message over
// TCP-sized limits is no answer.
func checkDNSBody(n int) error {
	if n > dns.MaxMsgSize {
		return fmt.Errorf("%w: answer longer than %d octets", ErrBadAnswer, dns.MaxMsgSize)
	}
	return nil
}
