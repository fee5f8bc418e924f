// Package upstream owns the encrypted side of dotproxy: one client per
// resolver (Upstream), over DNS-over-TLS with persistent, pipelined,
// verified connections, DNS-over-HTTPS (HTTP/2 or HTTP/3) or
// DNS-over-QUIC, the plain-DNS client for servers in the house (Plain), and
// the Selector that orders resolvers by health and
// latency, hedges slow attempts and fails over until one answers. Each
// Upstream counts its own queries, errors by kind, failovers and RTTs
// (Stats), for whoever exports them. It does not probe resolvers on its
// own schedule (package health does, through Upstream's narrow health
// methods), does not cache and does not export metrics.
package upstream

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Defaults for Options' zero values.
const (
	defaultMaxConns    = 2
	defaultIdleTimeout = 8 * time.Second // public resolvers close idle DoT at ~10 s
	defaultDialTimeout = 2 * time.Second
	// failurePenalty is the RTT sample a failed attempt counts as, at
	// least, so that fastest moves away from an upstream that fails fast.
	failurePenalty = 500 * time.Millisecond
)

// Options configures an Upstream. Zero values take the defaults.
type Options struct {
	Name      string
	Transport Transport // default TLS
	// Addr is the resolver's IP address and port; when it is not valid,
	// Host and Port name it instead, and Lookup finds Host's addresses.
	Addr   netip.AddrPort
	Host   string
	Port   uint16
	Lookup Lookup
	// Path is the URL's path, with its query if any, for HTTPS and HTTP3;
	// default "/dns-query".
	Path        string
	TLSName     string         // the name its certificate must be valid for (required)
	RootCAs     *x509.CertPool // nil: the system roots
	SPKIPins    [][]byte       // SHA-256 of accepted SubjectPublicKeyInfos; empty: no pinning
	MaxConns    int            // persistent connections, default 2
	IdleTimeout time.Duration  // close a connection idle this long, default 8s
	DialTimeout time.Duration  // TCP connect plus TLS handshake, default 2s
	// Clock is the time certificates are judged at, with grace for an
	// unset system clock; nil: the system clock, strictly.
	Clock  *Clock
	Logger *slog.Logger
}

// Upstream is one encrypted resolver, over any Transport. It is safe
// for concurrent use.
type Upstream struct {
	name      string
	transport Transport
	ep        *endpoint
	tlsName   string
	log       *slog.Logger
	carrier   carrier
	sender    sender        // the carrier, when it is one
	passive                 // health and speed from real queries, counters for Stats
	down      atomic.Bool   // set by the health checker
	failed    chan struct{} // a real query failed: the health checker probes sooner
}

// New builds an Upstream. It dials nothing until the first query.
func New(opts Options) (*Upstream, error) {
	if opts.TLSName == "" {
		return nil, fmt.Errorf("upstream %s: a TLS name is required", opts.Name)
	}
	if opts.Port == 0 {
		opts.Port = opts.Transport.DefaultPort()
	}
	ep, err := newEndpoint(opts.Addr, opts.Host, opts.Port, opts.Lookup)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", opts.Name, err)
	}
	if opts.Path == "" {
		opts.Path = "/dns-query"
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = defaultMaxConns
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = defaultIdleTimeout
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = defaultDialTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	u := &Upstream{
		name:      opts.Name,
		transport: opts.Transport,
		ep:        ep,
		tlsName:   opts.TLSName,
		log:       opts.Logger.With("upstream", opts.Name),
		failed:    make(chan struct{}, 1),
	}
	tlsConf := tlsConfig(opts.TLSName, opts.RootCAs, opts.SPKIPins, opts.Clock)
	switch opts.Transport {
	case TLS:
		u.carrier = newPool(opts, ep, tlsConf, u.stallAfter, u.log)
	default:
		u.carrier, err = newCarrier(opts, ep, tlsConf, u.stallAfter, u.log)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", opts.Name, err)
		}
	}
	u.sender, _ = u.carrier.(sender)
	return u, nil
}

// Name is the upstream's configured name.
func (u *Upstream) Name() string { return u.name }

// Addr is the upstream's address as configured: IP and port, or host
// name and port.
func (u *Upstream) Addr() string { return u.ep.String() }

// Addressed reports whether the upstream can be dialed without waiting
// for a lookup of its host name: its address is an IP address, or its
// host name's addresses are known (maybe due for a new lookup). Only such
// an upstream can help look up another's host name without waiting on a
// lookup of its own, maybe the very one it would help.
func (u *Upstream) Addressed() bool { return u.ep.known() }

// Transport is how the upstream is spoken to.
func (u *Upstream) Transport() Transport { return u.transport }

// Exchange sends q to the resolver and returns its answer, with q's ID
// and question restored and padding removed. q is not modified. A query
// that meets a reused connection the far end has just closed is resent
// once on a fresh one.
func (u *Upstream) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	return u.exchange(ctx, q, false)
}

// Probe is the health checker's Exchange. Its answer counts as any
// answer (an RTT sample, and the end of a streak of failures), but its
// failure only as an error in Stats: whether the upstream is down is for
// the checker to judge, with its fall and rise, and one lost probe must
// not make it Failing, which would hand every query to the others (the
// fallbacks' providers, maybe) until the next probe.
func (u *Upstream) Probe(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	return u.exchange(ctx, q, true)
}

// exchange is Exchange, or Probe when probe is set.
func (u *Upstream) exchange(ctx context.Context, q *dns.Msg, probe bool) (*dns.Msg, error) {
	if len(q.Question) != 1 {
		return nil, fmt.Errorf("%w: query has %d questions", ErrBadAnswer, len(q.Question))
	}
	wire, err := packQuery(q)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	u.counters.queries.Add(1)
	r, err := u.carrier.exchange(ctx, wire, q.Question[0])
	if err != nil {
		if probe {
			return nil, u.probeFailed(u.exchangeError(err))
		}
		return nil, u.fail(start, u.exchangeError(err))
	}
	dur := time.Since(start)
	u.succeed(dur, r.Rcode)
	restore(r, q)
	u.logAnswer(ctx, q, r.Rcode, dur)
	return r, nil
}

// logAnswer logs an answer at Debug, building nothing when Debug is off:
// the arguments would be allocated on every query.
func (u *Upstream) logAnswer(ctx context.Context, q *dns.Msg, rcode int, dur time.Duration) {
	if u.log.Enabled(ctx, slog.LevelDebug) {
		u.log.DebugContext(ctx, "answer received", "qname", q.Question[0].Name,
			"rcode", dns.RcodeToString[rcode], "dur", dur)
	}
}

// exchangeError describes a failed exchange with the upstream's name and
// address. It leaves the query name out: the error reaches the status
// page's last error and logs above Debug, neither of which may say what
// the house asks.
func (u *Upstream) exchangeError(err error) error {
	return fmt.Errorf("upstream %s (%s): exchanging a query: %w", u.name, u.ep, err)
}

// fail accounts for a failed attempt (see passive.fail) and returns
// err; a real failure also tells the health checker, which probes sooner.
func (u *Upstream) fail(start time.Time, err error) error {
	if !u.passive.fail(start, err) {
		return err
	}
	select {
	case u.failed <- struct{}{}:
	default:
	}
	return err
}

// stallAfter is how long a connection may go without answering anything
// before its unanswered queries mark it stalled: several smoothed RTTs,
// within bounds.
func (u *Upstream) stallAfter() time.Duration {
	s, ok := u.rtt.smoothed()
	if !ok {
		return time.Second
	}
	return min(max(8*s, 250*time.Millisecond), time.Second)
}

// SetHealthy records the health checker's verdict.
func (u *Upstream) SetHealthy(up bool) { u.down.Store(!up) }

// Healthy reports the health checker's last verdict (true until the
// first one).
func (u *Upstream) Healthy() bool { return !u.down.Load() }

// Failed signals, without blocking the query path, that a real query
// failed; the health checker probes sooner when it does.
func (u *Upstream) Failed() <-chan struct{} { return u.failed }

// SRTT is the smoothed round-trip time of answered queries; 0 before the
// first answer.
func (u *Upstream) SRTT() time.Duration {
	s, _ := u.rtt.smoothed()
	return s
}

// LastError is the last failure's text, or "".
func (u *Upstream) LastError() string {
	if p := u.last.Load(); p != nil {
		return p.msg
	}
	return ""
}

// OpenConns counts the upstream's live TLS connections.
func (u *Upstream) OpenConns() int { return u.carrier.open() }

// Close closes the upstream's connections; queries on them fail.
func (u *Upstream) Close() { u.carrier.closeAll() }
