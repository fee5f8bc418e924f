package resolver

import (
	"context"
	"net/netip"
	"testing"
)

func TestClientContext(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		want   netip.Addr
		wantOK bool
	}{
		{"none", context.Background(), netip.Addr{}, false},
		{"ipv4", WithClient(context.Background(), netip.MustParseAddr("192.168.1.20")), netip.MustParseAddr("192.168.1.20"), true},
		{"ipv6", WithClient(context.Background(), netip.MustParseAddr("fd00::20")), netip.MustParseAddr("fd00::20"), true},
		{"mapped ipv4 is unmapped", WithClient(context.Background(), netip.MustParseAddr("::ffff:10.0.0.7")), netip.MustParseAddr("10.0.0.7"), true},
		{"invalid address", WithClient(context.Background(), netip.Addr{}), netip.Addr{}, false},
		{"inner wins", WithClient(WithClient(context.Background(), netip.MustParseAddr("10.0.0.1")), netip.MustParseAddr("10.0.0.2")), netip.MustParseAddr("10.0.0.2"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ClientFrom(tc.ctx)
			if got != tc.want || ok != tc.wantOK {
				t.Fatalf("ClientFrom = %v, %v; want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
