package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Lookup finds the addresses of an upstream's host name without the
// system resolver or any plaintext DNS: through the other upstreams, or
// from a configured bootstrap list. ttl is how long the addresses may be
// used before they are looked up again.
type Lookup func(ctx context.Context, host string) (addrs []netip.Addr, ttl time.Duration, err error)

// Bounds on how long looked-up addresses are used before they are looked
// up again, whatever the TTL says: a resolver's addresses rarely change,
// but a TTL of seconds must not make every dial wait on a lookup.
const (
	minEndpointTTL = 30 * time.Second
	maxEndpointTTL = time.Hour
	// endpointRetry is how soon a failed lookup is tried again while the
	// old addresses stay in use.
	endpointRetry = 10 * time.Second
)

// endpoint is where an upstream's connections are dialed: a fixed
// address, or a host name's addresses, looked up again as their TTL runs
// out, one of them at a time until a dial to it fails. When a lookup fails the addresses it had are kept; only an
// endpoint that never found any fails to dial.
type endpoint struct {
	fixed  netip.AddrPort // valid: the address is fixed, host is ""
	host   string
	port   uint16
	lookup Lookup

	mu        sync.Mutex
	addrs     []netip.AddrPort
	cur       int           // the address dials take, until one fails there
	refresh   time.Time     // when the addresses are looked up again
	resolving chan struct{} // closed when the lookup under way ends; nil when none
	err       error         // the last lookup's error
}

// newEndpoint makes the endpoint of addr, or of host and port when addr
// is not valid.
func newEndpoint(addr netip.AddrPort, host string, port uint16, lookup Lookup) (*endpoint, error) {
	if addr.IsValid() {
		return &endpoint{fixed: addr}, nil
	}
	if host == "" || port == 0 {
		return nil, errors.New("invalid address")
	}
	if lookup == nil {
		return nil, fmt.Errorf("host name %s: no way to look up its address (a bootstrap list or IP address is needed)", host)
	}
	return &endpoint{host: host, port: port, lookup: lookup}, nil
}

// String is the endpoint as configured: IP and port, or host and port.
func (e *endpoint) String() string {
	if e.fixed.IsValid() {
		return e.fixed.String()
	}
	return e.host + ":" + strconv.Itoa(int(e.port))
}

// known reports whether addr has an address to return at once: a fixed
// one, or a host name's, looked up already (maybe due for a new lookup).
func (e *endpoint) known() bool {
	if e.fixed.IsValid() {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.addrs) > 0
}

// addr returns the address to dial now. A host name's addresses are
// looked up at the first dial and again once their TTL ran out; a dial
// does not wait for a lookup while there are old addresses to use.
func (e *endpoint) addr(ctx context.Context) (netip.AddrPort, error) {
	if e.fixed.IsValid() {
		return e.fixed, nil
	}
	for {
		e.mu.Lock()
		now := time.Now()
		if len(e.addrs) > 0 {
			if now.After(e.refresh) && e.resolving == nil {
				e.startLocked()
			}
			a := e.addrs[e.cur]
			e.mu.Unlock()
			return a, nil
		}
		if e.resolving == nil {
			if e.err != nil && now.Before(e.refresh) {
				err := e.err
				e.mu.Unlock()
				return netip.AddrPort{}, err
			}
			e.startLocked()
		}
		wait := e.resolving
		e.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return netip.AddrPort{}, ctx.Err()
		}
		e.mu.Lock()
		found, err := len(e.addrs) > 0, e.err
		e.mu.Unlock()
		if !found {
			return netip.AddrPort{}, err
		}
	}
}

// failed tells that a dial to a failed: the next dial takes the next
// address, so that a host with an address the network cannot reach (an
// IPv6 one on a house without IPv6, say) is dialed at another. Dials
// stay on an address while it works, which keeps the connections of an
// upstream at one server.
func (e *endpoint) failed(a netip.AddrPort) {
	if e.fixed.IsValid() {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.addrs) > 0 && e.addrs[e.cur] == a {
		e.cur = (e.cur + 1) % len(e.addrs)
	}
}

// lookupTimeout bounds one lookup of the endpoint's host name.
const lookupTimeout = 5 * time.Second

// startLocked starts a lookup in the background, with its own deadline:
// a dial that gives up does not waste it.
func (e *endpoint) startLocked() {
	done := make(chan struct{})
	e.resolving = done
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		defer cancel()
		ips, ttl, err := e.lookup(ctx, e.host)
		if err == nil && len(ips) == 0 {
			err = errors.New("no addresses")
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if err != nil {
			e.err = fmt.Errorf("looking up %s: %w", e.host, err)
			e.refresh = time.Now().Add(endpointRetry)
		} else {
			e.err = nil
			var was netip.AddrPort
			if len(e.addrs) > 0 {
				was = e.addrs[e.cur]
			}
			// A new slice: the old one may be read by the lookup's
			// caller no more, but the dials' choice is kept where the
			// address is still there.
			e.addrs, e.cur = make([]netip.AddrPort, 0, len(ips)), 0
			for _, ip := range ips {
				a := netip.AddrPortFrom(ip.Unmap(), e.port)
				if a == was {
					e.cur = len(e.addrs)
				}
				e.addrs = append(e.addrs, a)
			}
			e.refresh = time.Now().Add(min(max(ttl, minEndpointTTL), maxEndpointTTL))
		}
		e.resolving = nil
		close(done)
	}()
}
