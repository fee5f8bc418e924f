package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/miekg/dns"
)

// Transport is how an upstream is spoken to. Every transport has the
// same selection, health, hedging, failover, padding and counters: only
// the carriage of one packed query and its answer differs.
type Transport uint8

const (
	TLS   Transport = iota // DNS over TLS (RFC 7858), port 853
	HTTPS                  // DNS over HTTPS (RFC 8484) on HTTP/2, port 443
	HTTP3                  // DNS over HTTPS on HTTP/3 (QUIC), port 443
	QUIC                   // DNS over QUIC (RFC 9250), port 853
)

// String is the transport's name as metrics, logs and the status page
// give it; it is also the scheme of its configured address, but for
// HTTP3, whose scheme is h3.
func (t Transport) String() string {
	switch t {
	case TLS:
		return "tls"
	case HTTPS:
		return "https"
	case HTTP3:
		return "h3"
	case QUIC:
		return "quic"
	}
	return fmt.Sprintf("transport(%d)", uint8(t))
}

// MarshalText gives the transport's name, so that a JSON log or API
// says "https", not a number.
func (t Transport) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// DefaultPort is the port of the transport's address when none is
// given.
func (t Transport) DefaultPort() uint16 {
	if t == HTTPS || t == HTTP3 {
		return 443
	}
	return 853
}

// carrier is one transport's carriage of queries to one upstream. It
// owns the connections; Upstream owns everything else (health, counters,
// logging, the answer's ID and question).
type carrier interface {
	// exchange sends wire, a query packed by packQuery (ID 0, padded),
	// and returns the answer to question q, checked with checkAnswer
	// (its ID is the carrier's business: restore sets the client's).
	// A query that meets a reused connection the far end has just
	// closed is resent once on a fresh one. It logs "query sent" at
	// Debug, once the query is on its way, with what it knows of the
	// connection (the daemon's log of each step of a query).
	exchange(ctx context.Context, wire []byte, q dns.Question) (*dns.Msg, error)
	// open counts the live connections.
	open() int
	// closeAll closes every connection; queries on them fail at once.
	// It returns when they are closed, or after a bound.
	closeAll()
}

// newCarrier makes the carrier of an HTTPS, HTTP3 or QUIC upstream,
// dialing ep with tlsConf (a clone of it, with the carrier's own ALPN),
// logging to log. stallAfter is how long an HTTP/2 connection that
// keeps leaving queries unanswered may read no answer before it is taken
// for stalled (as a DoT connection is).
func newCarrier(opts Options, ep *endpoint, tlsConf *tls.Config, stallAfter func() time.Duration, log *slog.Logger) (carrier, error) {
	switch opts.Transport {
	case HTTPS, HTTP3:
		return newDoH(opts, ep, tlsConf, stallAfter, log)
	case QUIC:
		return newDoQ(opts, ep, tlsConf, log)
	}
	return nil, fmt.Errorf("unknown transport %s", opts.Transport)
}

// resendOnce sends a query with send on a connection from get, and once
// more on another when the one it took was reused and turns out closed
// by the far end (ErrConnClosed) while the context still allows: a
// resolver closes idle connections whenever it likes, and a query that
// meets one is no failure of the resolver. fresh, from get, says the
// connection was dialed for this query: its failure is not worth a
// retry, unless the server said it never processed the query
// (worthResending).
func resendOnce[C any](ctx context.Context, get func(context.Context) (c C, fresh bool, err error), send func(C) (*dns.Msg, error)) (*dns.Msg, error) {
	var resent error // why the query had to be resent, once it was
	for {
		c, fresh, err := get(ctx)
		if err == nil {
			var r *dns.Msg
			if r, err = send(c); err == nil {
				return r, nil
			}
			if worthResending(err, fresh) && resent == nil && ctx.Err() == nil {
				resent = err
				continue
			}
		}
		if resent != nil {
			// Both matter: the connection closed under the query, and the
			// resend failed too (the resolver is gone, say).
			err = fmt.Errorf("%w; resending: %w", resent, err)
		}
		return nil, err
	}
}

// worthResending reports whether a query that failed with err is worth
// sending once more: the server said it never processed it
// (errUnprocessed: above an HTTP/2 GOAWAY's last stream, or a stream it
// refused), or the connection closed under it and was not dialed for it.
func worthResending(err error, fresh bool) bool {
	return errors.Is(err, errUnprocessed) || errors.Is(err, ErrConnClosed) && !fresh
}
