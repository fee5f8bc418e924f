package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/upstream"
)

// bootstrapTTL is how long an upstream uses its bootstrap addresses
// before it tries the lookup through the other upstreams again.
const bootstrapTTL = time.Minute

// hostLookup finds the addresses of one upstream's host name without
// plaintext DNS and never through the system resolver: it asks the
// serving generation's other upstreams that can be dialed without a
// lookup of their own, A and AAAA together. When that fails, an upstream
// with addresses keeps them (the endpoint does, on an error), and one
// with none yet takes its bootstrap addresses. Leaving out the upstreams
// still waiting on their own lookup keeps two host names from waiting on
// each other, and an upstream from waiting on itself.
type hostLookup struct {
	self      *upstream.Upstream // the upstream looked up for; set once built, before its first dial
	bootstrap []netip.Addr
	gen       func() *generation // the generation whose selector to ask
	log       *slog.Logger
}

// lookup implements upstream.Lookup.
func (l *hostLookup) lookup(ctx context.Context, host string) ([]netip.Addr, time.Duration, error) {
	addrs, ttl, err := l.ask(ctx, host)
	if err == nil {
		return addrs, ttl, nil
	}
	if len(l.bootstrap) == 0 || l.self.Addressed() {
		return nil, 0, err
	}
	l.log.Debug("using the bootstrap addresses", "upstream", l.self.Name(), "host", host, "err", err)
	return slices.Clone(l.bootstrap), bootstrapTTL, nil
}

// ask looks host up through the other upstreams: its addresses and the
// shortest TTL among the records that gave them.
func (l *hostLookup) ask(ctx context.Context, host string) ([]netip.Addr, time.Duration, error) {
	type result struct {
		addrs []netip.Addr
		ttl   uint32
		err   error
	}
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA}
	results := make(chan result, len(qtypes))
	sel := l.gen().selector
	for _, qt := range qtypes {
		go func() {
			q := new(dns.Msg)
			q.SetQuestion(dns.Fqdn(host), qt)
			r, err := sel.ResolveAmong(ctx, q, l.mayAsk)
			if err != nil {
				results <- result{err: err}
				return
			}
			if r.Rcode != dns.RcodeSuccess {
				results <- result{err: fmt.Errorf("%s %s: answered %s", host, dns.TypeToString[qt], dns.RcodeToString[r.Rcode])}
				return
			}
			addrs, ttl := addresses(r)
			results <- result{addrs: addrs, ttl: ttl}
		}()
	}
	var addrs []netip.Addr
	var errs []error
	ttl := uint32(0)
	for range qtypes {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if len(r.addrs) > 0 && (len(addrs) == 0 || r.ttl < ttl) {
			ttl = r.ttl
		}
		addrs = append(addrs, r.addrs...)
	}
	if len(addrs) == 0 {
		if len(errs) == 0 {
			errs = append(errs, fmt.Errorf("%s has no addresses", host))
		}
		return nil, 0, fmt.Errorf("looking %s up through the other upstreams: %w", host, errors.Join(errs...))
	}
	slices.SortFunc(addrs, netip.Addr.Compare) // IPv4 first, for a stable order
	return slices.Compact(addrs), time.Duration(ttl) * time.Second, nil
}

// mayAsk reports whether m may be asked for l's host name: another
// upstream, and one that can be dialed at once.
func (l *hostLookup) mayAsk(m upstream.Member) bool {
	u, ok := m.(*upstream.Upstream)
	return ok && u != l.self && u.Addressed()
}

// addresses returns the A and AAAA records' addresses in r's answer
// (the upstream has kept only the question's name and its alias chain
// there) and the shortest TTL of the answer's records.
func addresses(r *dns.Msg) ([]netip.Addr, uint32) {
	var addrs []netip.Addr
	ttl := uint32(0)
	for i, rr := range r.Answer {
		if h := rr.Header(); i == 0 || h.Ttl < ttl {
			ttl = h.Ttl
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
