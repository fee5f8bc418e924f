package listener

import (
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// Observer is told about every query the server answers: the metrics,
// the query log. ObserveQuery runs on the query's path, after the answer
// is packed and before it is written, so it must be quick and must not
// block: count, or hand the event to another goroutine. It is called from
// many goroutines at once.
type Observer interface {
	ObserveQuery(QueryEvent)
}

// QueryEvent is one answered query. Queries dropped without an answer
// (too short to reply to, or responses) make none.
type QueryEvent struct {
	// Time is when the query was received.
	Time time.Time
	// Client is the address and port the query came from.
	Client netip.AddrPort
	// Transport is "udp" or "tcp".
	Transport string
	// Name and Qtype are the question, as the client wrote it; empty
	// and 0 when the query had none that could be read (FORMERR).
	Name  string
	Qtype uint16
	// Rcode is the answer's response code (dns.Rcode*, extended codes
	// such as BADVERS included).
	Rcode int
	// Size is the answer's packed length in bytes.
	Size int
	// Duration is the time from receiving the query to its answer
	// being packed.
	Duration time.Duration
	// Truncated: the answer did not fit the client's UDP size and went
	// out with TC set.
	Truncated bool
	// Info is what the resolver chain recorded: which upstream
	// answered, or whether the cache or the filter did. It is zero for
	// queries refused or rejected before the resolver.
	Info resolver.Info
}

// Observers returns an Observer that tells each non-nil one of obs in
// turn, or nil when there is none, so that the result can go straight
// into Options.Observer.
func Observers(obs ...Observer) Observer {
	var list multiObserver
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return list
}

type multiObserver []Observer

var _ Observer = multiObserver(nil)

func (m multiObserver) ObserveQuery(ev QueryEvent) {
	for _, o := range m {
		o.ObserveQuery(ev)
	}
}

// observe tells the observer about the answer m, size bytes packed, to a
// query from client over tr received at start.
func (s *Server) observe(m *dns.Msg, size int, client netip.AddrPort, tr transport, start time.Time, info resolver.Info) {
	ev := QueryEvent{
		Time:      start,
		Client:    client,
		Transport: string(tr),
		Rcode:     m.Rcode,
		Size:      size,
		Duration:  time.Since(start),
		Truncated: m.Truncated,
		Info:      info,
	}
	if len(m.Question) > 0 {
		ev.Name, ev.Qtype = m.Question[0].Name, m.Question[0].Qtype
	}
	s.opts.Observer.ObserveQuery(ev)
}
