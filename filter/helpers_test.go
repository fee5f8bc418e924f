package filter

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/dotproxy/dotproxy/internal/testlog"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/resolver"
)

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// newFilter builds a Filter from opts with a recording logger, stopped
// at cleanup.
func newFilter(t *testing.T, opts Options) (*Filter, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	if opts.Logger == nil {
		opts.Logger = slog.New(rec)
	}
	f, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f, rec
}

// upstream is a fake upstream that counts its queries and answers each
// with answer, or with one A record 192.0.2.1 when answer is nil.
type upstream struct {
	queries atomic.Int64
	answer  func(q *dns.Msg) *dns.Msg
}

func (u *upstream) Resolve(_ context.Context, req *resolver.Request) (resolver.Response, error) {
	if req.Inline {
		return resolver.Response{}, resolver.ErrWouldWait // as the selector
	}
	u.queries.Add(1)
	q := req.Msg()
	if u.answer != nil {
		return resolver.Response{Msg: u.answer(q)}, nil
	}
	return resolver.Response{Msg: answerA(q, q.Question[0].Name, "192.0.2.1")}, nil
}

// answerA answers q with an A record for name.
func answerA(q *dns.Msg, name, addr string) *dns.Msg {
	m := new(dns.Msg).SetReply(q)
	m.Answer = append(m.Answer, &dns.A{
		Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A:   net.ParseIP(addr).To4(),
	})
	return m
}

// ask sends a query for name and qtype, with EDNS, from client (none when
// invalid) through f in front of up.
func ask(t *testing.T, f *Filter, up resolver.Resolver, client netip.Addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	q := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
	q.SetEdns0(1232, false)
	req := resolver.NewRequest(q)
	req.Client = client
	resp, err := f.Middleware()(up).Resolve(context.Background(), req)
	var m *dns.Msg
	if err == nil {
		m, err = resp.Unpack()
	}
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return m
}

// isBlocked reports whether m is a block answer: one with EDE 15.
func isBlocked(m *dns.Msg) bool {
	e := resolver.EDE(m)
	return e != nil && e.InfoCode == dns.ExtendedErrorCodeBlocked
}

// logRecorder keeps every log record, for tests that check what was
// logged.
type logRecorder = testlog.Recorder
