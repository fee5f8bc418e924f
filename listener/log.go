package listener

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// warnInterval is how often a logLimiter lets a repeated warning through:
// a flood of refused connections must not become a flood of log lines.
const warnInterval = 10 * time.Second

// logLimiter lets one warning of a kind through per warnInterval and
// counts the ones it holds back.
type logLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// warn logs msg at Warn unless one was logged less than warnInterval
// ago; the next one logged says how many were held back.
func (l *logLimiter) warn(log *slog.Logger, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < warnInterval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	log.Warn(msg, args...)
}

// debug reports whether Debug logs are wanted, so that the per-query
// logging costs nothing when they are not.
func (s *Server) debug() bool {
	return s.log.Enabled(context.Background(), slog.LevelDebug)
}

func (s *Server) logDropped(raw []byte, client netip.AddrPort, tr transport) {
	if s.debug() {
		s.log.Debug("query dropped", "client", client, "transport", tr, "size", len(raw))
	}
}

func (s *Server) logReceived(raw []byte, msg *dns.Msg, client netip.AddrPort, tr transport) {
	if !s.debug() {
		return
	}
	qname, qtype := question(msg)
	s.log.Debug("query received", "client", client, "transport", tr, "size", len(raw),
		"qname", qname, "qtype", qtype, "id", rawHeader(raw).Id)
}

func (s *Server) logAnswered(m *dns.Msg, size int, client netip.AddrPort, tr transport, start time.Time) {
	if !s.debug() {
		return
	}
	qname, qtype := question(m)
	s.log.Debug("answer returned", "client", client, "transport", tr,
		"qname", qname, "qtype", qtype, "id", m.Id, "rcode", dns.RcodeToString[m.Rcode],
		"size", size, "dur", time.Since(start), "truncated", m.Truncated)
}

// question returns m's first question's name and type for logs, or empty
// strings.
func question(m *dns.Msg) (qname, qtype string) {
	if m == nil || len(m.Question) == 0 {
		return "", ""
	}
	return m.Question[0].Name, dns.Type(m.Question[0].Qtype).String()
}
