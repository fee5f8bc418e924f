package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
	"github.com/dotproxy/dotproxy/upstream"
)

// bootstrapTTL is how long an upstream uses its bootstrap addresses
// before it looks its name up.
const bootstrapTTL = time.Minute

// errNoneToAsk: a public name's lookup found no other upstream it could
// ask without waiting on a lookup of that upstream's own.
var errNoneToAsk = errors.New("no other upstream can be asked: none has an IP address, a bootstrap list or addresses found yet")

// hostLookup finds the addresses of one upstream's host name without
// plaintext DNS to the internet and never through the system resolver.
// The name goes the way a client's query for it goes below the cache
// (see via): a local record or a locally served zone answers it here, a
// forward rule or router: sends it to the house's servers, and only a
// name none of these takes goes to the serving generation's other
// upstreams. An upstream with a bootstrap list dials those addresses from
// the start and looks its name up once bootstrapTTL has passed; when a
// lookup fails, an upstream keeps the addresses it has (the endpoint
// does, on an error).
type hostLookup struct {
	self      *upstream.Upstream // the upstream looked up for; set once built, before its first dial
	bootstrap []netip.Addr
	gen       func() *generation // the generation whose routing and upstreams to ask
	log       *slog.Logger
}

// lookup implements upstream.Lookup.
func (l *hostLookup) lookup(ctx context.Context, host string) ([]netip.Addr, time.Duration, error) {
	if len(l.bootstrap) > 0 && !l.self.Addressed() {
		l.log.Debug("dialing the bootstrap addresses", "upstream", l.self.Name(), "host", host)
		return slices.Clone(l.bootstrap), bootstrapTTL, nil
	}
	return l.ask(ctx, host)
}

// ask looks host's A and AAAA records up, together, through the serving
// generation: its addresses and the shortest TTL among the records that
// gave them.
func (l *hostLookup) ask(ctx context.Context, host string) ([]netip.Addr, time.Duration, error) {
	type result struct {
		addrs []netip.Addr
		ttl   uint32
		err   error
	}
	g := l.gen()
	via := g.counted(l.via(g))
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA}
	results := make([]result, len(qtypes))
	done := make(chan struct{}, len(qtypes))
	for i, qt := range qtypes {
		go func() {
			defer func() { done <- struct{}{} }()
			q := new(dns.Msg)
			q.SetQuestion(dns.Fqdn(host), qt)
			req := resolver.NewRequest(q)
			resp, err := via.Resolve(ctx, req)
			var r *dns.Msg
			if err == nil {
				r, err = resp.Unpack()
			}
			switch {
			case err != nil:
				results[i].err = err
			case r == nil:
				results[i].err = errors.New("no answer")
			case r.Rcode != dns.RcodeSuccess:
				results[i].err = lookupAnswerError(req, r.Rcode)
			default:
				results[i].addrs, results[i].ttl = addresses(r, q.Question[0].Name)
			}
		}()
	}
	for range qtypes {
		<-done
	}
	var addrs []netip.Addr
	ttl := uint32(0)
	for _, r := range results {
		if len(r.addrs) > 0 && (len(addrs) == 0 || r.ttl < ttl) {
			ttl = r.ttl
		}
		addrs = append(addrs, r.addrs...)
	}
	if len(addrs) == 0 {
		errA, errAAAA := results[0].err, results[1].err
		switch {
		case errA == nil && errAAAA == nil:
			return nil, 0, errors.New("no A or AAAA records")
		case errA == nil || errAAAA == nil || errA.Error() == errAAAA.Error():
			// One reason, said once.
			return nil, 0, cmp.Or(errA, errAAAA)
		}
		return nil, 0, fmt.Errorf("type A: %w; type AAAA: %w", errA, errAAAA)
	}
	slices.SortFunc(addrs, netip.Addr.Compare) // IPv4 first, for a stable order
	return slices.Compact(addrs), time.Duration(ttl) * time.Second, nil
}

// lookupAnswerError is the error of a lookup answered with rcode.
func lookupAnswerError(req *resolver.Request, rcode int) error {
	if req.Info.Local {
		return fmt.Errorf("answered %s here: a name of the house that no forward rule, router: or local record takes",
			dns.RcodeToString[rcode])
	}
	if req.Info.Upstream != "" {
		return fmt.Errorf("%s answered %s", req.Info.Upstream, dns.RcodeToString[rcode])
	}
	return fmt.Errorf("answered %s", dns.RcodeToString[rcode])
}

// via returns where l's lookups go in g: local names first, as the
// filter answers them, then g's forward rules and router:, and the other
// upstreams that may be asked (askable) for every other name. Neither
// the lists nor rebinding protection apply: the upstream is the
// operator's choice, and what is trusted is its certificate, not its
// address. Built per lookup, since the upstreams asked depend on l, and
// a lookup comes once per TTL.
func (l *hostLookup) via(g *generation) resolver.Resolver {
	use := func(m upstream.Member) bool { return l.askable(g, m) }
	public := resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
		if !slices.ContainsFunc(g.ups, func(u *upstream.Upstream) bool { return use(u) }) {
			return resolver.Response{}, errNoneToAsk
		}
		r, err := g.selector.ResolveAmong(ctx, req.Msg(), use)
		return resolver.Response{Msg: r}, err
	})
	routed := g.fwd.route(public)
	return resolver.Func(func(ctx context.Context, req *resolver.Request) (resolver.Response, error) {
		if m := g.filter.Local(req); m != nil {
			req.Info.SetLocal()
			return resolver.Response{Msg: m}, nil
		}
		return routed.Resolve(ctx, req)
	})
}

// askable reports whether m may be asked for l's host name: another
// upstream of g, and one that can be dialed without waiting on a lookup
// that may wait on l: one with addresses, or one with a bootstrap list,
// which it dials at once. That keeps two host names from waiting on each
// other and an upstream from waiting on itself, and lets a host-named
// upstream find its address at start-up through one that has a bootstrap
// list.
func (l *hostLookup) askable(g *generation, m upstream.Member) bool {
	u, ok := m.(*upstream.Upstream)
	if !ok || u == l.self {
		return false
	}
	if u.Addressed() {
		return true
	}
	i := slices.Index(g.ups, u)
	return i >= 0 && len(g.cfg.Upstreams[i].Bootstrap) > 0
}

// addresses returns the addresses of the A and AAAA records in r's
// answer for qname or a name its CNAME chain leads to, and the shortest
// TTL of those records and the chain's: a forward rule's server or the
// router may add records of other names.
func addresses(r *dns.Msg, qname string) ([]netip.Addr, uint32) {
	chain := map[string]bool{strings.ToLower(qname): true}
	for range r.Answer { // each pass adds one link at least, or ends
		grew := false
		for _, rr := range r.Answer {
			if c, ok := rr.(*dns.CNAME); ok && chain[strings.ToLower(c.Hdr.Name)] && !chain[strings.ToLower(c.Target)] {
				chain[strings.ToLower(c.Target)], grew = true, true
			}
		}
		if !grew {
			break
		}
	}
	var addrs []netip.Addr
	ttl, seen := uint32(0), false
	for _, rr := range r.Answer {
		h := rr.Header()
		if !chain[strings.ToLower(h.Name)] {
			continue
		}
		if !seen || h.Ttl < ttl {
			ttl, seen = h.Ttl, true
		}
		var a netip.Addr
		switch rr := rr.(type) {
		case *dns.A:
			a, _ = netip.AddrFromSlice(rr.A.To4())
		case *dns.AAAA:
			a, _ = netip.AddrFromSlice(rr.AAAA.To16())
		}
		if a.IsValid() && !a.IsUnspecified() {
			addrs = append(addrs, a)
		}
	}
	return addrs, ttl
}
