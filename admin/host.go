package admin

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// localhost is the one name a browser never asks DNS for (RFC 6761
// §6.3), so it cannot be rebound to another origin.
const localhost = "localhost"

// checkHost refuses, with 403, a request whose Host header is not an IP
// literal, localhost or a name in Options.Hosts. A web page on another
// site can point its own name at this listener's address (DNS rebinding)
// and then read every answer as same-origin; the Host header still
// carries that page's name, so naming what may be asked for closes the
// hole. A reverse proxy in front lists its name in Options.Hosts.
func (s *Server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.hostAllowed(r.Host) {
			http.Error(w, "forbidden: this Host is not the admin listener's; list it in admin_hosts", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether the Host header value hostport names this
// listener: an IP literal, localhost or one of Options.Hosts, with or
// without a port or a trailing dot, in any letter case.
func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1] // "[::1]" without a port
	}
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == localhost {
		return true
	}
	return s.opts.Hosts != nil && slices.Contains(s.opts.Hosts(), host)
}
