package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

func newPlain(t *testing.T, addr netip.AddrPort) *Plain {
	t.Helper()
	p, err := NewPlain(PlainOptions{Name: "router", Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPlainExchange: a plain server answers over UDP, or over TCP when
// its UDP answer is truncated; the answer has the client's ID.
func TestPlainExchange(t *testing.T) {
	for _, tc := range []struct {
		name             string
		truncate         bool
		wantUDP, wantTCP int64
	}{
		{"udp", false, 1, 0},
		{"truncated: tcp", true, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := dottest.StartPlain(t, dottest.Answer("192.168.1.10"), tc.truncate)
			p := newPlain(t, srv.Addr())
			q := query("nas.lan.", dns.TypeA)
			q.Id = 4242
			r, err := p.Exchange(ctxFor(t, testTimeout), q)
			if err != nil {
				t.Fatal(err)
			}
			if r.Id != 4242 || addrOf(t, r) != netip.MustParseAddr("192.168.1.10") {
				t.Errorf("got ID %d %v", r.Id, r.Answer)
			}
			if udp, tcp := srv.Queries(); udp != tc.wantUDP || tcp != tc.wantTCP {
				t.Errorf("server read %d UDP and %d TCP queries, want %d and %d", udp, tcp, tc.wantUDP, tc.wantTCP)
			}
			st := p.Standing(time.Now())
			if !st.Healthy || st.Failing || st.RTT == 0 {
				t.Errorf("standing %+v after an answer", st)
			}
			if s := p.Stats(); s.Answers != 1 || s.Errors.Total() != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// TestPlainFailure: a silent server's query fails by the context's
// deadline, and the failure is counted in the streak and the stats.
func TestPlainFailure(t *testing.T) {
	srv := dottest.StartPlain(t, dottest.Silent(), false)
	p := newPlain(t, srv.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := p.Exchange(ctx, query("nas.lan.", dns.TypeA))
	if err == nil || !isTimeout(err) {
		t.Fatalf("got %v, want a timeout", err)
	}
	if !p.Standing(time.Now()).Failing {
		t.Error("not Failing after a failure")
	}
	s := p.Stats()
	if s.Errors[ErrorTimeout] != 1 || s.Healthy || s.LastError == "" {
		t.Errorf("stats %+v", s)
	}
	if errors.Is(err, context.Canceled) {
		t.Error("a timeout reads as canceled")
	}
}

// TestPlainFailover: a rule's servers fail over as upstreams do: the
// first is silent, the second answers.
func TestPlainFailover(t *testing.T) {
	dead := dottest.StartPlain(t, dottest.Silent(), false)
	alive := dottest.StartPlain(t, dottest.Answer("192.168.1.11"), false)
	s, err := NewSelector(SelectorOptions{Policy: ordered{}, AttemptTimeout: 200 * time.Millisecond},
		newPlain(t, dead.Addr()), newPlain(t, alive.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := resolve(s, ctxFor(t, testTimeout), query("nas.lan.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if addrOf(t, r) != netip.MustParseAddr("192.168.1.11") {
		t.Errorf("got %v", r.Answer)
	}
}

// TestPlainConcurrent: many goroutines share one Plain, each getting its
// own answer with its own ID (run with -race).
func TestPlainConcurrent(t *testing.T) {
	srv := dottest.StartPlain(t, dottest.Answer("192.168.1.10"), false)
	p := newPlain(t, srv.Addr())
	ctx := ctxFor(t, testTimeout)
	errs := make(chan error, 32)
	for i := range 32 {
		go func() {
			q := query(fmt.Sprintf("host%d.lan.", i), dns.TypeA)
			q.Id = uint16(i + 1)
			r, err := p.Exchange(ctx, q)
			if err == nil && (r.Id != q.Id || r.Question[0].Name != q.Question[0].Name) {
				err = fmt.Errorf("query %d got ID %d for %s", q.Id, r.Id, r.Question[0].Name)
			}
			errs <- err
		}()
	}
	for range 32 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if s := p.Stats(); s.Answers != 32 {
		t.Errorf("%d answers counted, want 32", s.Answers)
	}
}
