package listener

import (
	"time"

	"github.com/dotproxy/dotproxy/resolver"
)

// Observer is told about every query the server answers: the metrics,
// the query log. ObserveQuery runs on the query's path, after the answer
// is packed and before it is written, so it must be quick and must not
// block: count, or hand the event to another goroutine. It is called from
// many goroutines at once.
type Observer interface {
	ObserveQuery(resolver.QueryEvent)
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

func (m multiObserver) ObserveQuery(ev resolver.QueryEvent) {
	for _, o := range m {
		o.ObserveQuery(ev)
	}
}

// observe tells the observer about the answer to q: its rcode, its size
// packed and whether it was truncated.
func (s *Server) observe(q *query, rcode, size int, truncated bool) {
	ev := resolver.QueryEvent{
		Time:      q.start,
		Client:    q.client,
		Transport: q.req.Transport,
		Rcode:     rcode,
		Size:      size,
		Duration:  time.Since(q.start),
		Truncated: truncated,
		Info:      q.req.Info,
	}
	ev.Name, ev.Qtype = q.echoed()
	s.opts.Observer.ObserveQuery(ev)
}
