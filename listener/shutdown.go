package listener

import (
	"context"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// Shutdown stops serving gracefully. It stops accepting connections and
// reading queries at once, waits for the queries in flight to be answered
// and their answers written, and closes every socket and connection.
//
// If ctx ends first, Shutdown answers the queries still in flight with
// SERVFAIL (Extended DNS Error 23, Network Error), so that their clients
// retry elsewhere at once instead of waiting for a timeout, then closes
// everything, cancels those queries' contexts and returns ctx.Err(); the
// goroutines still answering exit as soon as their resolver returns, and
// their answers are dropped. Shutdown may be called more than once, and
// before Start.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateRunning {
		s.state = stateStopped
		s.mu.Unlock()
		s.cancel()
		return nil
	}
	s.state = stateStopped
	close(s.done)
	for _, ln := range s.tcp {
		ln.Close()
	}
	for _, u := range s.udp {
		// The socket stays open: answers in flight still leave through it.
		u.conn.stopReading()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()

	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	var err error
	select {
	case <-finished:
	case <-ctx.Done():
		err = ctx.Err()
		n := s.answerAbandoned()
		s.log.Warn("shutdown deadline reached, answered the queries in flight with SERVFAIL", "queries", n, "err", err)
	}
	// Close before cancelling, so that nothing more is written once the
	// bound is hit: the answers that cancelling makes (SERVFAIL, for a
	// query abandoned and answered already) are dropped by settle, and
	// a closed socket would take none anyway.
	s.mu.Lock()
	for _, u := range s.udp {
		u.conn.Close()
	}
	for c := range s.conns {
		c.conn.Close()
	}
	s.mu.Unlock()
	s.cancel()
	return err
}

// errShuttingDown answers the queries Shutdown abandons.
var errShuttingDown = &resolver.Error{Code: dns.ExtendedErrorCodeNetworkError, Text: "dotproxy is shutting down"}

// lastWriteTimeout bounds each write of the SERVFAILs Shutdown sends once
// its deadline has passed: the grace period is over, and a client that
// cannot take a small answer in this time is not reading.
const lastWriteTimeout = 250 * time.Millisecond

// track records j's query as handed to a worker, for Shutdown to answer
// if the worker does not in time.
func (s *Server) track(j job) {
	s.pmu.Lock()
	s.pending[j.q] = j
	s.pmu.Unlock()
}

// settle reports whether the worker that resolved q is still to answer
// it: false once Shutdown has answered it instead.
func (s *Server) settle(q *query) bool {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if _, ok := s.pending[q]; ok {
		delete(s.pending, q)
		return true
	}
	return !s.abandoned.Load() // a query never tracked (tests) is the caller's
}

// answerAbandoned answers every query still in flight with SERVFAIL, in
// place of its worker, and returns how many. A write takes at most
// lastWriteTimeout, including the one a stalled client holds up already.
func (s *Server) answerAbandoned() int {
	s.pmu.Lock()
	s.abandoned.Store(true)
	jobs := s.pending
	s.pending = make(map[*query]job)
	s.pmu.Unlock()
	if len(jobs) == 0 {
		return 0
	}

	byConn := make(map[*tcpConn][][]byte)
	live := s.live.Load()
	var q query
	for _, j := range jobs {
		// The worker may still be resolving j.q and writing to it: the
		// SERVFAIL is made from a query parsed afresh from its wire
		// form, which nothing writes.
		if !s.parse(&q, live, j.q.req.Wire, j.q.client, j.q.req.Transport) {
			continue
		}
		q.start = j.q.start
		wire := s.finish(nil, &q, resolver.Response{}, errShuttingDown)
		if len(wire) == 0 {
			continue
		}
		if j.tc != nil {
			byConn[j.tc] = append(byConn[j.tc], wire)
			continue
		}
		if wire = s.limitUDP(live, nil, wire, j.q.client); wire != nil {
			if err := j.u.conn.writeTo(wire, j.src.appendOOB(nil), j.q.client); err != nil {
				s.log.Debug("writing UDP answer failed", "client", j.q.client, "err", err)
			}
		}
	}
	var wg sync.WaitGroup
	for c, answers := range byConn {
		// Cut short a write already stuck on a client that does not
		// read; drain sees abandoned and keeps its writes as short.
		c.conn.SetWriteDeadline(time.Now().Add(lastWriteTimeout))
		wg.Go(func() {
			for _, wire := range answers {
				c.qmu.Lock()
				c.queue = appendFramed(c.queue, wire)
				c.queued.Add(int64(2 + len(wire)))
				c.qmu.Unlock()
			}
			c.drain()
		})
	}
	wg.Wait()
	return len(jobs)
}
