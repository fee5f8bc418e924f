package main

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// serveDoH3 answers DNS over HTTPS over HTTP/3 (quic-go) on pc, with the
// same handler as serveDoH. It returns when pc is closed.
func serveDoH3(pc net.PacketConn, conf *tls.Config, a answerer, c *counters) {
	tc := conf.Clone()
	tc.NextProtos = nil // Serve sets h3
	srv := &http3.Server{
		Handler:    &dohHandler{a: a, c: c},
		TLSConfig:  tc,
		QUICConfig: &quic.Config{MaxIncomingStreams: maxDoHStreams},
		ConnContext: func(ctx context.Context, conn *quic.Conn) context.Context {
			c.accepts.Add(1)
			c.open.Add(1)
			go func() {
				<-conn.Context().Done()
				c.open.Add(-1)
			}()
			return ctx
		},
	}
	if err := srv.Serve(pc); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		log.Printf("%s: %v", c.name, err)
	}
}
