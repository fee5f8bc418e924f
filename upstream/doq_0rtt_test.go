package upstream

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// TestDoQZeroRTT: a connection that resumes a session with a ticket that
// allows early data sends a standard query in 0-RTT data, as the server's
// view of the packets shows; a query of another opcode, which a replay
// could harm, waits for the handshake (RFC 9250 §4.5); a server that
// refuses the early data gets the query again once the handshake is done,
// and answers it.
func TestDoQZeroRTT(t *testing.T) {
	tests := []struct {
		name      string
		opcode    int
		reject    bool
		wantEarly bool     // the server read the query from 0-RTT packets
		wantSent  []string // the "query sent" lines' 0rtt
	}{
		{"QUERY in 0-RTT", dns.OpcodeQuery, false, true, []string{"0rtt=true"}},
		{"NOTIFY waits for the handshake", dns.OpcodeNotify, false, false, []string{"0rtt=false"}},
		{"0-RTT refused, sent again", dns.OpcodeQuery, true, false, []string{"0rtt=true", "0rtt=false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			srv := startDoQ(t, ca, nil)
			var logs syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			u := newDoQUpstream(t, ca, srv, Options{MaxConns: 1, Logger: log})
			d := u.carrier.(*doq)

			if _, err := u.Exchange(ctxFor(t, testTimeout), query("first.test.", dns.TypeA)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a ticket for 0-RTT", d.earlyTicket)
			srv.CloseConns(doqNoError)
			waitFor(t, "the client to see the close", func() bool { return u.OpenConns() == 0 })
			srv.Reject0RTT(tt.reject)
			mark := len(logs.String())

			q := query("early.test.", dns.TypeA)
			q.Opcode = tt.opcode
			r, err := u.Exchange(ctxFor(t, testTimeout), q)
			if err != nil {
				t.Fatal(err)
			}
			if r.Opcode != tt.opcode || len(r.Answer) != 1 {
				t.Errorf("answer %v, want one record for opcode %d", r, tt.opcode)
			}

			if got := srv.EarlyStreamFrames() > 0; got != tt.wantEarly {
				t.Errorf("server read the query from 0-RTT packets: %v, want %v", got, tt.wantEarly)
			}
			// The server records a handshake as it completes, which may be
			// after it answered.
			waitFor(t, "the server to record 2 handshakes", func() bool { return len(srv.States()) == 2 })
			if st := srv.States()[1]; !st.TLS.DidResume || (tt.wantEarly && !st.Used0RTT) || (tt.reject && st.Used0RTT) {
				t.Errorf("second connection resumed %v, took 0-RTT %v", st.TLS.DidResume, st.Used0RTT)
			}
			var sent []string
			for l := range strings.Lines(logs.String()[mark:]) {
				if strings.Contains(l, `msg="query sent"`) {
					_, after, _ := strings.Cut(l, "0rtt=")
					sent = append(sent, "0rtt="+strings.Fields(after)[0])
				}
			}
			if strings.Join(sent, ",") != strings.Join(tt.wantSent, ",") {
				t.Errorf("queries sent with %v, want %v", sent, tt.wantSent)
			}
			if got := srv.Queries(); got != 2 {
				t.Errorf("server read %d queries, want 2", got)
			}
		})
	}
}
