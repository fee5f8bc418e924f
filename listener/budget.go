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

// acquire takes one token from sh and one from the global budget,
// waiting for both, in that order, so that a client at its share waits
// without holding a global token. It reports false, holding nothing, when
// stop is closed first.
func (b *budget) acquire(sh *share, stop <-chan struct{}) bool {
	select {
	case sh.tokens <- struct{}{}:
	case <-stop:
		return false
	}
	select {
	case b.global <- struct{}{}:
		return true
	case <-stop:
		<-sh.tokens
		return false
	}
}

// tryShare takes one token from client's share without waiting, and
// returns the share to release it to, or nil when the client is at its
// share.
func (b *budget) tryShare(client netip.Addr) *share {
	sh := b.join(client)
	select {
	case sh.tokens <- struct{}{}:
		return sh
	default:
		b.leave(sh)
		return nil
	}
}

// leaveShare gives back a token tryShare took and lets go of sh.
func (b *budget) leaveShare(sh *share) {
	<-sh.tokens
	b.leave(sh)
}

// release gives back what acquire took.
func (b *budget) release(sh *share) {
	<-b.global
	<-sh.tokens
}
