package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// alpnH2 is the ALPN protocol ID of HTTP/2 over TLS (RFC 9113 §3.2).
const alpnH2 = "h2"

// newH2Dialer returns the dialer of HTTP/2 connections: TLS with a clone
// of tlsConf offering only h2 (our verification, pins and clock apply),
// then HTTP/2 on it, from net/http. There is no fallback: a server that
// does not agree to h2 is not asked anything.
func newH2Dialer(tlsConf *tls.Config) dialFunc {
	conf := tlsConf.Clone()
	conf.NextProtos = []string{alpnH2}
	// HTTP/2 with prior knowledge on the connection DialTLSContext
	// returns: a batchConn over our TLS, which net/http does not see as
	// TLS, hence "unencrypted" to it. The TLS handshake and the h2
	// ALPN check are done before, in the dial.
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	t := &http.Transport{
		Protocols: protocols,
		// Our own TLS dial: crypto/tls's and net/http's defaults would
		// neither pin nor refuse HTTP/1.1. It dials the address
		// NewClientConn is given, which the pool chose.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			tc, err := dialTLS(ctx, addr, conf)
			if err != nil {
				return nil, &dialError{err}
			}
			if p := tc.ConnectionState().NegotiatedProtocol; p != alpnH2 {
				tc.Close()
				return nil, &dialError{fmt.Errorf("the server does not speak HTTP/2 (ALPN %q)", p)}
			}
			// The frames of many requests are encrypted as one TLS
			// record and go out in one write(2).
			return newBatchConn(tc), nil
		},
		// A request's headers are only what doh.post sets: no
		// Accept-Encoding.
		DisableCompression: true,
		// No WriteByteTimeout: writes only queue, and the batchConn's
		// writer gives up on a peer that stopped reading, as a DoT
		// write does (conn.go).
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: pingAfter,
			PingTimeout:     pingTimeout,
		},
	}
	return func(ctx context.Context, addr netip.AddrPort) (httpConn, error) {
		cc, err := t.NewClientConn(ctx, "https", addr.String())
		if err != nil {
			return nil, asDialError(err)
		}
		return h2Conn{cc}, nil
	}
}

// asDialError marks err as a failure to connect, unless it is one
// already.
func asDialError(err error) error {
	var de *dialError
	if errors.As(err, &de) {
		return err
	}
	return &dialError{err}
}

// h2Conn is an HTTP/2 connection.
type h2Conn struct{ *http.ClientConn }

func (c h2Conn) alive() bool { return c.Err() == nil }

// h2Lost are the texts of net/http's HTTP/2 errors that end a request
// because of its connection (GOAWAY, closed, lost to an unanswered
// PING): the library does not export them as values to test with.
var h2Lost = []string{
	"GOAWAY",
	"http2: client conn not usable",
	"http2: client conn is closed",
	"http2: client connection force closed",
	"http2: client connection lost",
}

// lost implements httpConn: a GOAWAY refuses new streams on a connection
// that Err still calls open.
func (c h2Conn) lost(err error) bool {
	if netLost(err) {
		return true
	}
	msg := err.Error()
	for _, s := range h2Lost {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// netLost reports whether err is the end of the socket or its stream of
// octets under a request.
func netLost(err error) bool {
	var op *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &op)
}
func (c h2Conn) available() bool { return c.Available() > 0 }
