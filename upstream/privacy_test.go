package upstream

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// secretName is a query name that must not leave the Debug log.
func secretName(i int) string { return fmt.Sprintf("secret-medical-clinic-%d.example.", i) }

// syncBuffer is a log destination for several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestFailoverLogsPrivateAndLimited: with an upstream that fails every
// query, over DoT, DoH or DoQ, the Info log says so once, not once per query, and neither it
// nor the status page's last error names a query; at Debug every
// failover is logged with its name.
func TestFailoverLogsPrivateAndLimited(t *testing.T) {
	const queries = 20
	// dot and doh make the first upstream, of that transport, with opts.
	dot := func(start func(*testing.T, *dottest.CA) *dottest.Server) func(*testing.T, *dottest.CA, Options) *Upstream {
		return func(t *testing.T, ca *dottest.CA, opts Options) *Upstream {
			return newUpstream(t, ca, start(t, ca), opts)
		}
	}
	doh := func(tr Transport, h dottest.Handler, resp dottest.Response) func(*testing.T, *dottest.CA, Options) *Upstream {
		return func(t *testing.T, ca *dottest.CA, opts Options) *Upstream {
			srv := startDoH(t, ca, tr, h)
			srv.SetResponse(resp)
			return newDoHUpstream(t, ca, srv, opts)
		}
	}
	doq := func(stream dottest.StreamHandler) func(*testing.T, *dottest.CA, Options) *Upstream {
		return func(t *testing.T, ca *dottest.CA, opts Options) *Upstream {
			srv := startDoQ(t, ca, nil)
			srv.SetStreamHandler(stream)
			return newDoQUpstream(t, ca, srv, opts)
		}
	}
	tests := []struct {
		name  string
		first func(t *testing.T, ca *dottest.CA, opts Options) *Upstream
		msg   string
		// asked is how many queries reach the first upstream: one that
		// fails goes to the back of the order after the first.
		asked int
	}{
		{"connection refused", dot(func(t *testing.T, ca *dottest.CA) *dottest.Server {
			srv := startServer(t, ca, nil)
			srv.Kill()
			return srv
		}), "upstream attempt failed, failing over", 1},
		{"SERVFAIL", dot(handler(dottest.Rcode(dns.RcodeServerFailure))), "upstream answered SERVFAIL, failing over", queries},
		{"DoH status 502", doh(HTTPS, nil, dottest.Response{Status: 502}), "upstream attempt failed, failing over", 1},
		{"DoH over HTTP/3 SERVFAIL", doh(HTTP3, dottest.Rcode(dns.RcodeServerFailure), dottest.Response{}),
			"upstream answered SERVFAIL, failing over", queries},
		{"DoQ stream reset", doq(dottest.ResetStream(doqRequestCancelled)), "upstream attempt failed, failing over", 1},
		{"DoQ SERVFAIL", doq(func(q *dns.Msg, st *quic.Stream, _ *quic.Conn) {
			m := new(dns.Msg)
			m.SetRcode(q, dns.RcodeServerFailure)
			dottest.Reply(st, m)
		}), "upstream answered SERVFAIL, failing over", queries},
	}
	for _, tt := range tests {
		for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
			t.Run(tt.name+"/"+level.String(), func(t *testing.T) {
				var out syncBuffer
				log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: level}))
				ca := dottest.NewCA(t)
				first := tt.first(t, ca, Options{Name: "first", Logger: log})
				second := newUpstream(t, ca, startServer(t, ca, dottest.Answer("192.0.2.2")), Options{Name: "second", Logger: log})
				s := newSelector(t, SelectorOptions{Policy: ordered{}, AttemptTimeout: longAttempt, Logger: log}, first, second)
				for i := range queries {
					if _, err := resolve(s, ctxFor(t, testTimeout), query(secretName(i), dns.TypeA)); err != nil {
						t.Fatal(err)
					}
				}

				lines := strings.Split(strings.TrimSpace(out.String()), "\n")
				var failovers, named int
				for _, l := range lines {
					if strings.Contains(l, "msg=\""+tt.msg+"\"") {
						failovers++
					}
					if strings.Contains(l, "secret-medical-clinic") {
						named++
						if !strings.Contains(l, "level=DEBUG") {
							t.Errorf("a query name above Debug: %s", l)
						}
					}
				}
				want := 1
				if level == slog.LevelDebug {
					want = tt.asked
				}
				if failovers != want {
					t.Errorf("%d failover lines at %v, want %d:\n%s", failovers, level, want, out.String())
				}
				if level == slog.LevelDebug && named < tt.asked {
					t.Errorf("only %d Debug lines name a query, want at least %d", named, tt.asked)
				}
				if last := first.Stats().LastError; strings.Contains(last, "secret") {
					t.Errorf("last error names the query: %q", last)
				}
			})
		}
	}
}
