package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/dotproxy/dotproxy/resolver"
	"github.com/miekg/dns"
)

// Timeouts of the HTTP client that downloads filter lists.
const (
	listHeaderTimeout   = 30 * time.Second
	listDownloadTimeout = 5 * time.Minute
)

// listHTTPClient returns the HTTP client for filter list downloads. Its
// host names are resolved through r (the upstream selector) rather than
// the system resolver: on a router whose resolv.conf points at dotproxy
// itself, the system resolver would wait for a listener that is not up
// yet, and either way the lookup leaves the house encrypted.
func listHTTPClient(r resolver.Resolver) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.ResponseHeaderTimeout = listHeaderTimeout
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			return d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		}
		ips, err := lookup(ctx, r, host)
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
	return &http.Client{Transport: tr, Timeout: listDownloadTimeout}
}

// lookup resolves host's IPv4 and then IPv6 addresses through r.
func lookup(ctx context.Context, r resolver.Resolver, host string) ([]netip.Addr, error) {
	var ips []netip.Addr
	var errs []error
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		q := new(dns.Msg).SetQuestion(dns.Fqdn(host), qtype)
		q.SetEdns0(1232, false)
		m, err := resolver.ResolveMsg(ctx, r, q)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, rr := range m.Answer {
			switch rr := rr.(type) {
			case *dns.A:
				ips = append(ips, netip.AddrFrom4([4]byte(rr.A.To4())))
			case *dns.AAAA:
				ips = append(ips, netip.AddrFrom16([16]byte(rr.AAAA.To16())))
			}
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("resolving %s through the upstreams: no address: %w", host, errors.Join(errs...))
	}
	return ips, nil
}
