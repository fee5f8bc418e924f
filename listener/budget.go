package listener

import (
	"net/netip"
	"sync"
)

// budget bounds the queries handed to workers, whose answers wait (on
// an upstream, mostly): all clients together, across UDP and TCP, and
// each client IP on its own, so that one client cannot take the whole
// of it. Queries answered at once (cache hits) never touch it. As BIND's
// recursive-clients and dnsdist's per-client limits do, it bounds memory
// by the number of answers being made, whatever the clients send: a TCP
// client at its share is read no further (TCP flow control slows it),
// and a UDP query over its client's share is dropped, for the client to
// retry later, since one UDP socket cannot stop reading for one client.
// A share binds only under load: while most of the budget is free, a
// client may borrow beyond it (canBorrow).
type budget struct {
	global    chan struct{} // one token per query in a worker
	perClient int

	mu      sync.Mutex
	clients map[netip.Addr]*share
}

// share is one client's part of the budget. refs counts what holds it
// (TCP connections for their lives, UDP queries while answered), so that
// a client with none leaves the map.
type share struct {
	key    netip.Addr
	tokens chan struct{}
	refs   int
}

// clientKey is what a client's share is keyed by: its IPv4 address, or
// the /64 of its IPv6 address, which one host may hold whole.
func clientKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.Addr()
	}
	return a
}

func newBudget(global, perClient int) *budget {
	return &budget{
		global:    make(chan struct{}, global),
		perClient: perClient,
		clients:   make(map[netip.Addr]*share),
	}
}

// join returns client's share, to hold until leave.
func (b *budget) join(client netip.Addr) *share {
	b.mu.Lock()
	defer b.mu.Unlock()
	sh := b.clients[client]
	if sh == nil {
		sh = &share{key: client, tokens: make(chan struct{}, b.perClient)}
		b.clients[client] = sh
	}
	sh.refs++
	return sh
}

// leave lets go of sh, taken from join.
func (b *budget) leave(sh *share) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if sh.refs--; sh.refs == 0 {
		delete(b.clients, sh.key)
	}
}

// ticket is one query's place in the budget: a global token and,
// unless borrowed, a token of its client's share.
type ticket struct {
	sh       *share
	borrowed bool
}

// canBorrow reports whether a client at its share may still go on: while
// most of the budget is free, nobody is held to a share. A client alone
// then gets what it needs, even one that sends a whole LAN's queries,
// such as a forwarder in front of dotproxy; under load, each client is
// held to its share. The threshold is low, a quarter: what clients hold
// beyond their shares is queued at the upstreams ahead of everyone
// else's queries.
func (b *budget) canBorrow() bool { return len(b.global) < cap(b.global)/borrowFraction }

// borrowFraction: clients may borrow while less than 1/borrowFraction of
// the budget is in use.
const borrowFraction = 4

// takeShare takes a token of sh, or borrows beyond it, without waiting;
// false when the client must wait for one of its own queries to end.
func (b *budget) takeShare(sh *share) (ticket, bool) {
	select {
	case sh.tokens <- struct{}{}:
		return ticket{sh: sh}, true
	default:
	}
	return ticket{sh: sh, borrowed: true}, b.canBorrow()
}

// undoShare gives back what takeShare took.
func (b *budget) undoShare(t ticket) {
	if !t.borrowed {
		<-t.sh.tokens
	}
}

// tryAcquire takes a ticket for a query of sh's client without waiting.
func (b *budget) tryAcquire(sh *share) (ticket, bool) {
	t, ok := b.takeShare(sh)
	if !ok {
		return t, false
	}
	select {
	case b.global <- struct{}{}:
		return t, true
	default:
		b.undoShare(t)
		return t, false
	}
}

// acquire takes a ticket for a query of sh's client, waiting first for
// the client's share (unless it may borrow), then for the global budget,
// so that a client at its share waits without holding a global token. It
// reports false, holding nothing, when stop is closed first.
func (b *budget) acquire(sh *share, stop <-chan struct{}) (ticket, bool) {
	t, ok := b.takeShare(sh)
	if !ok {
		select {
		case sh.tokens <- struct{}{}:
			t = ticket{sh: sh}
		case <-stop:
			return t, false
		}
	}
	select {
	case b.global <- struct{}{}:
		return t, true
	case <-stop:
		b.undoShare(t)
		return t, false
	}
}

// release gives back what acquire or tryAcquire took.
func (b *budget) release(t ticket) {
	<-b.global
	b.undoShare(t)
}
