package upstream

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// busyThreshold is how many queries in flight on the least-loaded
// connection make a pool open another one, while under its cap.
const busyThreshold = 64

// pooled is what a connSet needs of a connection: whether it still
// takes queries, and how many it carries now.
type pooled interface {
	alive() bool
	inFlight() int32
}

// connSet keeps up to max persistent connections to one upstream and
// hands out the least loaded: the pool of DoT's and of DoQ's carriers.
// Dialing happens in the background with its own deadline, so a query
// that gives up does not waste a handshake the next query can use;
// another connection is dialed while the least loaded is busy.
//
// take, when set, is called under the set's lock on the connection about
// to be handed out, and may refuse it (it began closing since): the
// connection then counts the query before anyone else picks, so that a
// burst of queries sees the load it makes.
type connSet[C pooled] struct {
	max         int
	dialTimeout time.Duration
	handshake   func(ctx context.Context) (C, error)
	discard     func(C) // closes a connection whose dial ended after closeAll
	take        func(C) bool

	mu      sync.Mutex
	conns   []C
	dialing chan struct{} // closed when the dial under way ends; nil when none
	dialErr error         // the last dial's error
	closed  bool
}

// get returns a connection to use and whether it was dialed while the
// caller waited (a fresh connection's failure is not worth a retry).
func (s *connSet[C]) get(ctx context.Context) (C, bool, error) {
	var none C
	for waited := false; ; waited = true {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return none, false, ErrConnClosed
		}
		if waited && s.dialErr != nil {
			err := s.dialErr
			s.mu.Unlock()
			return none, false, err
		}
		if c, ok := s.pickLocked(); ok {
			s.mu.Unlock()
			return c, waited, nil
		}
		wait := s.dialing
		if wait == nil {
			wait = make(chan struct{})
			s.dialing = wait
			go s.dial(wait)
		}
		s.mu.Unlock()

		select {
		case <-wait:
		case <-ctx.Done():
			return none, false, s.waitError(ctx.Err())
		}
	}
}

// waitError is why a query gave up waiting for a dial, err being its
// context's error: said so, with the last dial's failure when there was
// one, so that a resolver never reached is not read as a slow answer.
func (s *connSet[C]) waitError(err error) error {
	s.mu.Lock()
	last := s.dialErr
	s.mu.Unlock()
	if last != nil {
		return fmt.Errorf("no connection yet (the last dial: %v): %w", last, err)
	}
	return fmt.Errorf("no connection yet: %w", err)
}

// ready returns the least loaded open connection, or false when there
// is none: it never waits for a dial, and starts one only as get does,
// for a busy set under its cap.
func (s *connSet[C]) ready() (C, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		var none C
		return none, false
	}
	return s.pickLocked()
}

// growLocked dials another connection in the background when c, the
// least loaded, is busy and the set is under its cap. c still takes the
// query at hand; the new one takes later ones, if the dial succeeds.
func (s *connSet[C]) growLocked(c C) {
	if c.inFlight() >= busyThreshold && len(s.conns) < s.max && s.dialing == nil {
		s.dialing = make(chan struct{})
		go s.dial(s.dialing)
	}
}

// pickLocked returns the least loaded live connection that take
// accepts, dialing another when it is busy (growLocked).
func (s *connSet[C]) pickLocked() (C, bool) {
	for {
		c, ok := s.leastLoadedLocked()
		if !ok {
			return c, false
		}
		s.growLocked(c) // its load before this query is counted on it
		if s.take == nil || s.take(c) {
			return c, true
		}
		// It began closing since: the next look drops it.
	}
}

// leastLoadedLocked drops finished connections and returns the least
// loaded live one.
func (s *connSet[C]) leastLoadedLocked() (best C, ok bool) {
	live := s.conns[:0]
	for _, c := range s.conns {
		if !c.alive() {
			continue
		}
		live = append(live, c)
		if !ok || c.inFlight() < best.inFlight() {
			best, ok = c, true
		}
	}
	clear(s.conns[len(live):])
	s.conns = live
	return best, ok
}

// dial dials one connection, with its own deadline, and adds it.
func (s *connSet[C]) dial(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), s.dialTimeout)
	defer cancel()
	c, err := s.handshake(ctx)
	s.mu.Lock()
	s.dialErr = err
	if err == nil {
		if s.closed {
			go s.discard(c)
		} else {
			s.conns = append(s.conns, c)
		}
	}
	s.dialing = nil
	s.mu.Unlock()
	close(done)
}

// open counts the live connections.
func (s *connSet[C]) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leastLoadedLocked()
	return len(s.conns)
}

// takeAll closes the set to new queries and dials, and returns the
// connections it held, for the caller to close.
func (s *connSet[C]) takeAll() []C {
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := s.conns
	s.conns = nil
	s.closed = true
	return conns
}
