package upstream

import (
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// earlyClaimWait is how long a connection dialed for 0-RTT holds the
// server's packets for a query to send in 0-RTT data. It passes only when
// no query takes the connection at once, or when quic-go did not take the
// ticket for 0-RTT after all (the dial then waits on the handshake).
const earlyClaimWait = 250 * time.Millisecond

// earlyGate is the UDP socket of a connection dialed for 0-RTT. It
// withholds the server's packets from quic-go until one replay-safe
// query has opened its stream in 0-RTT: quic-go v0.65 races when a stream
// opens while a 0-RTT handshake completes (quic-go issue 4303), and the
// handshake cannot complete before its packets are read. Every other
// query on the connection waits for the handshake.
//
// It is no OOBCapablePacketConn, so that quic-go reads through ReadFrom;
// it passes on what quic-go sets on a UDP socket (buffer sizes, the DF
// bit) so that it does not warn.
type earlyGate struct {
	udp         *net.UDPConn
	opened      chan struct{}
	openOnce    sync.Once
	openOnWrite atomic.Bool
	claimed     atomic.Bool
}

var _ net.PacketConn = (*earlyGate)(nil)

func newEarlyGate(udp *net.UDPConn) *earlyGate {
	g := &earlyGate{udp: udp, opened: make(chan struct{})}
	time.AfterFunc(earlyClaimWait, func() {
		if g.claim() {
			g.open()
		}
	})
	return g
}

// claim takes the connection's one 0-RTT stream; false when it was
// taken, or given up.
func (g *earlyGate) claim() bool { return g.claimed.CompareAndSwap(false, true) }

// sent opens the gate once the 0-RTT stream's data is on its way: the
// next packet out carries it. It is called once the stream is open,
// before its data is written, so that no packet is missed.
func (g *earlyGate) sent() {
	g.openOnWrite.Store(true)
	time.AfterFunc(earlyClaimWait, g.open) // should the packet never come
}

// open lets the server's packets through, for good.
func (g *earlyGate) open() { g.openOnce.Do(func() { close(g.opened) }) }

func (g *earlyGate) ReadFrom(p []byte) (int, net.Addr, error) {
	<-g.opened
	return g.udp.ReadFrom(p)
}

func (g *earlyGate) WriteTo(p []byte, addr net.Addr) (int, error) {
	n, err := g.udp.WriteTo(p, addr)
	if g.openOnWrite.Load() {
		g.open()
	}
	return n, err
}

// SetReadDeadline opens the gate: quic-go sets one only to end its read
// loop, as the connection closes.
func (g *earlyGate) SetReadDeadline(t time.Time) error {
	g.open()
	return g.udp.SetReadDeadline(t)
}

func (g *earlyGate) Close() error {
	g.open()
	return g.udp.Close()
}

func (g *earlyGate) LocalAddr() net.Addr                   { return g.udp.LocalAddr() }
func (g *earlyGate) SetDeadline(t time.Time) error         { return g.udp.SetDeadline(t) }
func (g *earlyGate) SetWriteDeadline(t time.Time) error    { return g.udp.SetWriteDeadline(t) }
func (g *earlyGate) SetReadBuffer(n int) error             { return g.udp.SetReadBuffer(n) }
func (g *earlyGate) SetWriteBuffer(n int) error            { return g.udp.SetWriteBuffer(n) }
func (g *earlyGate) SyscallConn() (syscall.RawConn, error) { return g.udp.SyscallConn() }

// replaySafe reports whether the packed query may go in 0-RTT data,
// which an attacker can replay: only a standard QUERY may (RFC 9250
// §4.5).
func replaySafe(wire []byte) bool {
	return len(wire) >= headerLen && (wire[2]>>3)&0xF == dns.OpcodeQuery
}

// earlyTicket reports whether the session cache holds a ticket for the
// server that allows 0-RTT data.
func (d *doq) earlyTicket() bool {
	cs, ok := d.tlsConf.ClientSessionCache.Get(d.tlsConf.ServerName)
	if !ok || cs == nil {
		return false
	}
	_, st, err := cs.ResumptionState()
	return err == nil && st != nil && st.EarlyData
}
