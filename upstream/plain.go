package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// PlainOptions configures a Plain server. Zero values take the defaults.
type PlainOptions struct {
	Name   string
	Addr   netip.AddrPort
	Logger *slog.Logger
}

// Plain is a DNS server spoken to in plain DNS: UDP, and TCP when the
// answer comes truncated. It is for servers in the house (the router's
// DNS, a corporate server behind a VPN), which config allows only on
// private, loopback and link-local addresses; nothing on the internet is
// asked in plain text. It is a Member like Upstream, with the same
// passive health: a smoothed RTT, a rank and a streak of failures. It is
// safe for concurrent use.
type Plain struct {
	name string
	addr netip.AddrPort
	log  *slog.Logger
	passive
}

var _ Member = (*Plain)(nil)

// NewPlain builds a Plain server. It opens nothing until the first query.
func NewPlain(opts PlainOptions) (*Plain, error) {
	if !opts.Addr.IsValid() {
		return nil, fmt.Errorf("server %s: invalid address", opts.Name)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Plain{name: opts.Name, addr: opts.Addr, log: opts.Logger.With("upstream", opts.Name)}, nil
}

// Name implements Member.
func (p *Plain) Name() string { return p.name }

// Exchange implements Member: q goes out with a fresh ID, the client's
// EDNS options dropped and our UDP size advertised; over TCP again when
// the UDP answer is truncated. The answer has q's ID and question, and
// records that do not belong to the question are dropped, as from an
// Upstream.
func (p *Plain) Exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	if len(q.Question) != 1 {
		return nil, fmt.Errorf("%w: query has %d questions", ErrBadAnswer, len(q.Question))
	}
	start := time.Now()
	p.counters.queries.Add(1)
	out := plainQuery(q)
	r, err := p.exchange(ctx, "udp", out)
	if err == nil && r.Truncated {
		r, err = p.exchange(ctx, "tcp", out)
	}
	if err == nil {
		err = checkAnswer(r, q.Question[0])
	}
	if err != nil {
		err = fmt.Errorf("server %s (%s): exchanging a query: %w", p.name, p.addr, err)
		p.fail(start, err)
		return nil, err
	}
	d := time.Since(start)
	p.succeed(d, r.Rcode)
	restore(r, q)
	if p.log.Enabled(ctx, slog.LevelDebug) {
		p.log.DebugContext(ctx, "answer received", "qname", q.Question[0].Name,
			"rcode", dns.RcodeToString[r.Rcode], "dur", d)
	}
	return r, nil
}

// exchange sends m over network once. The client checks the answer's ID
// and source; the deadline is the context's.
func (p *Plain) exchange(ctx context.Context, network string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, UDPSize: ednsUDPSize}
	if dl, ok := ctx.Deadline(); ok {
		c.Timeout = time.Until(dl)
		if c.Timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	r, _, err := c.ExchangeContext(ctx, m, p.addr.String())
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, fmt.Errorf("%s: %w", network, err)
	}
	return r, nil
}

// plainQuery is q as sent to a plain server: a fresh ID (the client's
// would make spoofing easier), the question and flags, our buffer size
// and the client's DO bit; the client's own EDNS options (cookies, client
// subnet) stay behind, and there is no padding, which only an encrypted
// hop needs.
func plainQuery(q *dns.Msg) *dns.Msg {
	m := &dns.Msg{MsgHdr: q.MsgHdr, Question: q.Question}
	m.Id = dns.Id()
	do := false
	if opt := q.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	m.SetEdns0(ednsUDPSize, do)
	return m
}

// Standing implements Member. No prober checks a plain server, so it is
// always Healthy; Failing tells the policies to move away from it.
func (p *Plain) Standing(now time.Time) Standing { return p.standing(now, true) }

// Stats returns a snapshot of the server's counters, as Upstream.Stats
// does; Healthy is false while its queries are failing in a row, there
// being no prober's verdict.
func (p *Plain) Stats() UpstreamStats {
	return p.stats(p.name, p.addr.String(), p.streak.Load() == 0)
}
