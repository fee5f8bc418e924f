package upstream

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// TestDoQResumption: a new connection resumes the session of the one
// before, with its ticket, and sends no query in 0-RTT data, though the
// server would take it: early data can be replayed (RFC 9250 §4.5), and
// quic-go races when a stream opens as a 0-RTT handshake completes.
func TestDoQResumption(t *testing.T) {
	for _, opcode := range []int{dns.OpcodeQuery, dns.OpcodeNotify} {
		t.Run(dns.OpcodeToString[opcode], func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startDoQ(t, ca, nil)
			var logs syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			u := newDoQUpstream(t, ca, srv, Options{MaxConns: 1, Logger: log})
			cache := u.carrier.(*doq).tlsConf.ClientSessionCache

			if _, err := u.Exchange(ctxFor(t, testTimeout), query("first.test.", dns.TypeA)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a session ticket", func() bool {
				_, ok := cache.Get(testTLSName)
				return ok
			})
			srv.CloseConns(doqNoError)
			waitFor(t, "the client to see the close", func() bool { return u.OpenConns() == 0 })
			mark := len(logs.String())

			q := query("second.test.", dns.TypeA)
			q.Opcode = opcode
			r, err := u.Exchange(ctxFor(t, testTimeout), q)
			if err != nil {
				t.Fatal(err)
			}
			if r.Opcode != opcode || len(r.Answer) != 1 {
				t.Errorf("answer %v, want one record for opcode %d", r, opcode)
			}
			// The server records a handshake as it completes, which may be
			// after it answered.
			waitFor(t, "the server to record 2 handshakes", func() bool { return len(srv.States()) == 2 })
			states := srv.States()
			if !states[1].TLS.DidResume || states[1].Used0RTT {
				t.Errorf("second connection resumed %v, used 0-RTT %v; want true, false",
					states[1].TLS.DidResume, states[1].Used0RTT)
			}
			if n := srv.EarlyStreamFrames(); n != 0 {
				t.Errorf("server read %d STREAM frames from 0-RTT packets, want none", n)
			}
			if sent := logs.String()[mark:]; !strings.Contains(sent, `msg="query sent"`) || !strings.Contains(sent, "resumed=true") {
				t.Errorf("no Debug line for a query sent on a resumed connection:\n%s", sent)
			}
		})
	}
}
