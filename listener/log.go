package listener

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// debug reports whether Debug logs are wanted, so that the per-query
// logging costs nothing when they are not.
func (s *Server) debug() bool {
	return s.log.Enabled(context.Background(), slog.LevelDebug)
}

func (s *Server) logDropped(raw []byte, client netip.AddrPort, tr resolver.Transport) {
	if s.debug() {
		s.log.Debug("query dropped", "client", client, "transport", tr, "size", len(raw))
	}
}

func (s *Server) logReceived(q *query) {
	if !s.debug() {
		return
	}
	qname, qtype := question(q)
	s.log.Debug("query received", "client", q.client, "transport", q.req.Transport, "size", len(q.req.Wire),
		"qname", qname, "qtype", qtype, "id", rawHeader(q.req.Wire).Id)
}

func (s *Server) logAnswered(q *query, rcode, size int, truncated bool) {
	if !s.debug() {
		return
	}
	qname, qtype := question(q)
	s.log.Debug("answer returned", "client", q.client, "transport", q.req.Transport,
		"qname", qname, "qtype", qtype, "id", rawHeader(q.req.Wire).Id, "rcode", dns.RcodeToString[rcode],
		"size", size, "dur", time.Since(q.start), "truncated", truncated)
}

// question returns q's question's name and type for logs, or empty
// strings when it has none that could be read.
func question(q *query) (qname, qtype string) {
	name, t := q.echoed()
	if name == "" {
		return "", ""
	}
	return name, dns.Type(t).String()
}
