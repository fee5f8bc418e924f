package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/url"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// newH3Dialer returns the dialer of HTTP/3 connections: QUIC with a
// clone of tlsConf offering only h3 (our verification, pins and clock
// apply), each on a UDP socket of its own, then HTTP/3 on it.
func newH3Dialer(tlsConf *tls.Config, u *url.URL) dialFunc {
	conf := tlsConf.Clone()
	conf.NextProtos = []string{http3.NextProtoH3}
	qconf := &quic.Config{
		// QUIC's PING and idle timeout do what HTTP/2's PING does: an
		// idle timeout of the two together, keep-alives at least every
		// pingAfter.
		KeepAlivePeriod: pingAfter,
		MaxIdleTimeout:  pingAfter + pingTimeout,
	}
	// A request's headers are only dohHeader: no Accept-Encoding.
	t := &http3.Transport{DisableCompression: true}
	return func(ctx context.Context, addr netip.AddrPort) (httpConn, error) {
		network := "udp4"
		if addr.Addr().Is6() {
			network = "udp6"
		}
		pc, err := net.ListenUDP(network, nil)
		if err != nil {
			return nil, &dialError{err}
		}
		tr := &quic.Transport{Conn: pc}
		qc, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(addr), conf, qconf)
		if err != nil {
			tr.Close()
			pc.Close()
			return nil, &dialError{err}
		}
		context.AfterFunc(qc.Context(), func() {
			tr.Close()
			pc.Close()
		})
		return h3Conn{t.NewClientConn(qc), qc, u}, nil
	}
}

// h3Conn is an HTTP/3 connection.
type h3Conn struct {
	cc  *http3.ClientConn
	qc  *quic.Conn
	url *url.URL
}

// post implements httpConn.
func (c h3Conn) post(ctx context.Context, wire []byte, q dns.Question) (*dns.Msg, error) {
	ans, err := roundTrip(ctx, c.cc, c.url, wire)
	if err != nil {
		return nil, err
	}
	return ans.message(q)
}

func (c h3Conn) alive() bool { return c.qc.Context().Err() == nil }

// lost implements httpConn: a stream learns of the connection's close
// before the connection's context ends (as in DoQ).
func (c h3Conn) lost(err error) bool { return connClosed(err) || netLost(err) }

// netLost reports whether err is the end of the socket or its stream of
// octets under a request.
func netLost(err error) bool {
	var op *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &op)
}

// available is always true: QUIC does not tell how many streams the
// server still allows, and a request beyond them waits for one.
func (c h3Conn) available() bool { return true }

// Close closes the QUIC connection; again is no harm.
func (c h3Conn) Close() error {
	return c.qc.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
}
