package listener

import "time"

// job is one query for a worker to answer: read from the UDP socket u,
// or from the TCP connection tc.
type job struct {
	u   *udpSocket
	tc  *tcpConn
	q   *query
	src replySrc // UDP: where the answer must come from
	t   ticket   // the query's place in the in-flight budget
}

// workerIdle is how long a worker waits for another query before it
// exits.
const workerIdle = 5 * time.Second

// dispatch hands j to an idle worker, or starts one when none is idle.
func (s *Server) dispatch(j job) {
	s.track(j)
	select {
	case s.jobs <- j: // an idle worker takes it
	default:
		s.wg.Add(1)
		go s.worker(j)
	}
}

// worker answers j, then whatever queries the readers hand it, until it
// has been idle for workerIdle or the server shuts down. Workers are
// reused rather than a goroutine started per query: a query's work grows
// a fresh goroutine's stack every time, which showed as several percent
// of the CPU in profiles. There are never more workers than queries
// being answered (MaxUDPInflight, and MaxTCPInflightPerConn per
// connection).
func (s *Server) worker(j job) {
	defer s.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		if j.tc != nil {
			s.answerTCP(j.tc, j.q, j.t)
		} else {
			s.answerUDP(j.u, j.q, j.src, j.t)
		}
		idle.Reset(workerIdle)
		select {
		case j = <-s.jobs:
		case <-idle.C:
			return
		case <-s.done:
			return
		}
	}
}
