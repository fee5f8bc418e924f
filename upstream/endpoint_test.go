package upstream

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeLookup answers host lookups from a script it can change, counting
// them.
type fakeLookup struct {
	mu    sync.Mutex
	addrs []netip.Addr
	ttl   time.Duration
	err   error
	calls atomic.Int32
	gate  chan struct{} // when set, each lookup waits for it
}

func (f *fakeLookup) lookup(ctx context.Context, host string) ([]netip.Addr, time.Duration, error) {
	f.calls.Add(1)
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addrs, f.ttl, f.err
}

func (f *fakeLookup) set(addrs []netip.Addr, ttl time.Duration, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs, f.ttl, f.err = addrs, ttl, err
}

func TestEndpointFixed(t *testing.T) {
	ep, err := newEndpoint(netip.MustParseAddrPort("192.0.2.1:853"), "", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ep.addr(context.Background())
	if err != nil || a != netip.MustParseAddrPort("192.0.2.1:853") || ep.String() != "192.0.2.1:853" {
		t.Fatalf("addr %v, %v; String %q", a, err, ep.String())
	}
}

func TestEndpointInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		host string
		port uint16
		look Lookup
	}{
		{"nothing", "", 0, nil},
		{"no port", "dns.example", 0, (&fakeLookup{}).lookup},
		{"no lookup", "dns.example", 443, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := newEndpoint(netip.AddrPort{}, tc.host, tc.port, tc.look); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestEndpointLookup(t *testing.T) {
	f := &fakeLookup{}
	f.set([]netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("::ffff:192.0.2.2")}, time.Hour, nil)
	ep, err := newEndpoint(netip.AddrPort{}, "dns.example", 443, f.lookup)
	if err != nil {
		t.Fatal(err)
	}
	if ep.String() != "dns.example:443" {
		t.Errorf("String %q", ep.String())
	}
	seen := map[netip.AddrPort]bool{}
	for range 4 {
		a, err := ep.addr(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		seen[a] = true
	}
	// Round robin over both, the mapped one unmapped.
	want := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:443"), netip.MustParseAddrPort("192.0.2.2:443")}
	if len(seen) != 2 || !seen[want[0]] || !seen[want[1]] {
		t.Errorf("dialed %v, want %v", seen, want)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d lookups within the TTL, want 1", n)
	}
}

// Once the TTL has run out, a dial takes the old addresses at once and
// the lookup runs beside it; a failed lookup keeps them.
func TestEndpointRefreshKeepsOld(t *testing.T) {
	f := &fakeLookup{}
	f.set([]netip.Addr{netip.MustParseAddr("192.0.2.1")}, time.Hour, nil)
	ep, _ := newEndpoint(netip.AddrPort{}, "dns.example", 853, f.lookup)
	if _, err := ep.addr(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.set(nil, 0, errors.New("every upstream down"))
	expire(ep)
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()
	a, err := ep.addr(context.Background()) // must not wait on the lookup
	if err != nil || a != netip.MustParseAddrPort("192.0.2.1:853") {
		t.Fatalf("addr %v, %v while looking up again", a, err)
	}
	close(gate)
	waitFor(t, "the failed lookup", func() bool { ep.mu.Lock(); defer ep.mu.Unlock(); return ep.resolving == nil && ep.err != nil })
	if a, err := ep.addr(context.Background()); err != nil || a != netip.MustParseAddrPort("192.0.2.1:853") {
		t.Fatalf("addr %v, %v after a failed lookup: want the old address kept", a, err)
	}

	f.set([]netip.Addr{netip.MustParseAddr("192.0.2.9")}, time.Hour, nil)
	expire(ep)
	ep.addr(context.Background())
	waitFor(t, "the new address", func() bool {
		a, _ := ep.addr(context.Background())
		return a == netip.MustParseAddrPort("192.0.2.9:853")
	})
}

func TestEndpointNeverFound(t *testing.T) {
	f := &fakeLookup{}
	f.set(nil, 0, errors.New("no upstream answered"))
	ep, _ := newEndpoint(netip.AddrPort{}, "dns.example", 853, f.lookup)
	if _, err := ep.addr(context.Background()); err == nil {
		t.Fatal("no error without addresses")
	}
	// Within the retry interval the error is given at once, without
	// another lookup.
	if _, err := ep.addr(context.Background()); err == nil || f.calls.Load() != 1 {
		t.Fatalf("err %v after %d lookups", err, f.calls.Load())
	}
	f.set([]netip.Addr{}, time.Hour, nil) // an empty answer is a failure too
	expire(ep)
	if _, err := ep.addr(context.Background()); err == nil {
		t.Fatal("no error for an empty answer")
	}
}

func TestEndpointDialGivesUp(t *testing.T) {
	f := &fakeLookup{gate: make(chan struct{})}
	f.set([]netip.Addr{netip.MustParseAddr("192.0.2.1")}, time.Hour, nil)
	ep, _ := newEndpoint(netip.AddrPort{}, "dns.example", 853, f.lookup)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := ep.addr(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the dial's deadline", err)
	}
	close(f.gate) // the lookup goes on and serves the next dial
	waitFor(t, "the lookup", func() bool { _, err := ep.addr(context.Background()); return err == nil })
	if n := f.calls.Load(); n != 1 {
		t.Errorf("%d lookups, want 1", n)
	}
}

// expire makes ep's addresses due for a lookup now.
func expire(ep *endpoint) {
	ep.mu.Lock()
	ep.refresh = time.Time{}
	ep.mu.Unlock()
}
