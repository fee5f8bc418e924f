package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dohMediaType is the media type of a DNS message in a DoH request or
// response body (RFC 8484 §6).
const dohMediaType = "application/dns-message"

// Health check of an idle or silent DoH connection: one silent for
// pingAfter is pinged (an HTTP/2 or a QUIC PING), and closed when nothing
// comes back for pingTimeout more, so that a resolver gone without a FIN,
// a reset or a CONNECTION_CLOSE does not keep taking queries that can
// only time out.
const (
	pingAfter   = 2 * time.Second
	pingTimeout = time.Second
)

// doh is the carrier of DNS over HTTPS (RFC 8484), on HTTP/2 or HTTP/3:
// each query is a POST of its wire form on a stream of one of a few
// persistent connections, the answer the response's body.
type doh struct {
	transport Transport // HTTPS or HTTP3, for errors
	proto     string    // "HTTP/2" or "HTTP/3", for the log
	url       *url.URL  // https://<TLS name>[:port]<path>, parsed once
	pool      *dohPool
	log       *slog.Logger
}

var _ carrier = (*doh)(nil)

// newDoH makes the carrier of a DNS-over-HTTPS upstream: HTTP/2 over TLS
// for HTTPS, HTTP/3 over QUIC for HTTP3, dialing ep and verifying the
// server with a clone of tlsConf.
func newDoH(opts Options, ep *endpoint, tlsConf *tls.Config, stallAfter func() time.Duration, log *slog.Logger) (carrier, error) {
	u, err := dohURL(opts)
	if err != nil {
		return nil, err
	}
	d := &doh{transport: opts.Transport, url: u, log: log}
	var c carrier = d
	var dial dialFunc
	switch opts.Transport {
	case HTTPS:
		d.proto, dial = "HTTP/2", newH2Dialer(tlsConf, u.Host, u.RequestURI(), stallAfter)
		c = h2Carrier{d}
	case HTTP3:
		d.proto, dial = "HTTP/3", newH3Dialer(tlsConf, u)
	default:
		return nil, fmt.Errorf("DNS over HTTPS over %s: no such transport", opts.Transport)
	}
	d.pool = &dohPool{
		ep:          ep,
		dial:        dial,
		max:         opts.MaxConns,
		dialTimeout: opts.DialTimeout,
		idleTimeout: opts.IdleTimeout,
	}
	return c, nil
}

// dohURL is the URL queries are sent to: the TLS name is the
// authority (the name the certificate is checked for, whatever address
// is dialed), with the port unless it is HTTPS's own.
func dohURL(opts Options) (*url.URL, error) {
	port := opts.Port
	if opts.Addr.IsValid() {
		port = opts.Addr.Port()
	}
	host := opts.TLSName
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
		host = "[" + host + "]"
	}
	if port != 443 {
		host = net.JoinHostPort(opts.TLSName, strconv.Itoa(int(port)))
	}
	if !strings.HasPrefix(opts.Path, "/") {
		return nil, fmt.Errorf("DoH path %q: must start with /", opts.Path)
	}
	u, err := url.Parse("https://" + host + opts.Path)
	if err != nil {
		return nil, fmt.Errorf("DoH URL: %w", err)
	}
	return u, nil
}

// exchange implements carrier: the query goes out on one of the pool's
// connections, and once more on another when the one it took fails it
// without an answer (the far end closed it, sent GOAWAY or reset it).
func (d *doh) exchange(ctx context.Context, wire []byte, q dns.Question) (*dns.Msg, error) {
	return resendOnce(ctx, d.pool.get, func(c *dohConn) (*dns.Msg, error) {
		if d.log.Enabled(ctx, slog.LevelDebug) {
			d.log.DebugContext(ctx, "query sent", "qname", q.Name,
				"qtype", dns.TypeToString[q.Qtype], "http", d.proto, "size", len(wire))
		}
		return d.post(ctx, c, wire, q)
	})
}

// post sends wire on c and returns the checked answer. The connection is
// the caller's no longer: post gives it back to the pool.
func (d *doh) post(ctx context.Context, c *dohConn, wire []byte, q dns.Question) (*dns.Msg, error) {
	broken := false
	defer func() { d.pool.release(c, broken) }()
	r, err := c.conn.post(ctx, wire, q)
	if err != nil {
		broken, err = d.transportError(ctx, c, "sending query", err)
		return nil, err
	}
	return r, nil
}

// transportError describes a request that failed without an HTTP
// answer, and reports whether the connection is broken: it takes no new
// request then, and the query is worth one more try on another
// (ErrConnClosed). When the context ended it is the context's error
// (abandoned or timed out, as the counters tell them), and the
// connection is not to blame. When the connection is closed or going
// (GOAWAY, a reset or the end of the connection: c.conn.lost), it is
// broken. Otherwise only this query's stream failed, as when the server
// resets it (RST_STREAM, an HTTP/3 stream error): the query has no
// answer (ErrStreamReset), and the connection keeps serving the others;
// retiring it and resending would cost a handshake for the server's
// refusal of one query.
func (d *doh) transportError(ctx context.Context, c *dohConn, action string, err error) (broken bool, _ error) {
	switch {
	case ctx.Err() != nil:
		return false, d.errorf(c, "%s: %w", action, ctx.Err())
	case errors.Is(err, ErrBadAnswer):
		// An answer came, and it was bad: the connection is fine.
		return false, d.errorf(c, "%w", err)
	case errors.Is(err, ErrStreamReset):
		return false, d.errorf(c, "%s: %w", action, err)
	case errors.Is(err, ErrConnClosed) || errors.Is(err, ErrStalled):
		// Stalled, as DoT's: failed over, not resent on the upstream.
		return true, d.errorf(c, "%s: %w", action, err)
	case !c.conn.alive() || c.conn.lost(err):
		if isTimeout(err) {
			return true, d.errorf(c, "%s: %w", action, err)
		}
		return true, d.errorf(c, "%w: %s: %w", ErrConnClosed, action, err)
	}
	return false, d.errorf(c, "%w: %s: %w", ErrStreamReset, action, err)
}

// errorf formats an error about c as "https 192.0.2.1:443: ...".
func (d *doh) errorf(c *dohConn, format string, args ...any) error {
	return fmt.Errorf("%s %s: %w", d.transport, c.addr, fmt.Errorf(format, args...))
}

// open implements carrier.
func (d *doh) open() int { return d.pool.open() }

// closeAll implements carrier.
func (d *doh) closeAll() { d.pool.closeAll() }
