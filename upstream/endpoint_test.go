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
	// Dials stay on the first address while it works, move on when a
	// dial fails there, and the mapped address is unmapped.
	first, second := netip.MustParseAddrPort("192.0.2.1:443"), netip.MustParseAddrPort("192.0.2.2:443")
	for _, step := range []struct {
		fail netip.AddrPort // reported before the dial, when valid
		want netip.AddrPort
	}{
		{want: first},
		{want: first},
		{fail: second, want: first}, // not the one in use: no change
		{fail: first, want: second},
		{want: second},
		{fail: second, want: first}, // round again
	} {
		if step.fail.IsValid() {
			ep.failed(step.fail)
		}
		a, err := ep.addr(context.Background())
		if err != nil || a != step.want {
			t.Fatalf("after failing %v: dialed %v, %v; want %v", step.fail, a, err, step.want)
		}
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

	f.set([]netip.Addr{netip.MustParseAddr("192.0.2.9")}, time.Hour, nil) // the old one gone
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

// A lookup that still holds the address in use keeps dials there.
func TestEndpointRefreshKeepsChoice(t *testing.T) {
	f := &fakeLookup{}
	a1, a2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	f.set([]netip.Addr{a1, a2}, time.Hour, nil)
	ep, _ := newEndpoint(netip.AddrPort{}, "dns.example", 853, f.lookup)
	ep.addr(context.Background())
	ep.failed(netip.AddrPortFrom(a1, 853))
	f.set([]netip.Addr{a1, a2}, time.Hour, nil)
	expire(ep)
	ep.addr(context.Background()) // starts the lookup
	waitFor(t, "the lookup", func() bool { return f.calls.Load() == 2 && ep.known() && !resolving(ep) })
	if a, _ := ep.addr(context.Background()); a != netip.AddrPortFrom(a2, 853) {
		t.Fatalf("dialed %v after the lookup, want %v still", a, netip.AddrPortFrom(a2, 853))
	}
}

func resolving(ep *endpoint) bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.resolving != nil
}
