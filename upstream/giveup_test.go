package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/resolver"
)

// TestGiveUpEDE: the Extended DNS Error of a query every upstream failed
// tells what happened: 22 when nothing answered in time, 23 only when
// the upstreams could not be reached, and 0 (Other), saying so, when one
// answered but not validly (it was reached).
func TestGiveUpEDE(t *testing.T) {
	refused := fmt.Errorf("upstream a: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	closed := fmt.Errorf("upstream a: %w: reading answer: EOF", ErrConnClosed)
	status404 := fmt.Errorf("upstream b: https 192.0.2.1:443: %w: status 404", ErrBadAnswer)
	reset := fmt.Errorf("upstream b: %w: sending query: stream error", ErrStreamReset)
	for _, tc := range []struct {
		name     string
		errs     []error
		wantCode uint16
		wantText string
	}{
		{"timed out", []error{context.DeadlineExceeded, context.Canceled}, dns.ExtendedErrorCodeNoReachableAuthority, "no upstream answered in time"},
		{"refused and closed", []error{refused, closed, context.DeadlineExceeded}, dns.ExtendedErrorCodeNetworkError, "upstreams unreachable"},
		{"HTTP 404", []error{status404, status404}, dns.ExtendedErrorCodeOther, "upstreams answered invalidly"},
		{"stream reset and timed out", []error{reset, context.DeadlineExceeded}, dns.ExtendedErrorCodeOther, "upstreams answered invalidly"},
		{"404 and refused", []error{status404, refused}, dns.ExtendedErrorCodeOther, "upstreams unreachable or answering invalidly"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, text := giveUpEDE(tc.errs); code != tc.wantCode || text != tc.wantText {
				t.Errorf("EDE %d %q, want %d %q", code, text, tc.wantCode, tc.wantText)
			}
		})
	}
}

// TestGiveUpEDEFromDoH: through a selector and real DoH servers, a wrong
// URL path (404) and reset streams end the query with EDE 0 and a text
// that says the upstreams answered, not 23 "unreachable".
func TestGiveUpEDEFromDoH(t *testing.T) {
	for _, tc := range []struct {
		name  string
		path  string
		reset bool
	}{
		{"wrong path: 404", "/", false},
		{"streams reset", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := dottest.NewCA(t)
			var ups []*Upstream
			for _, name := range []string{"a", "b"} {
				srv := startDoH(t, ca, HTTPS, nil)
				if tc.reset {
					srv.ResetNext(1000)
				}
				ups = append(ups, newDoHUpstream(t, ca, srv, Options{Name: name, Path: tc.path}))
			}
			s := newSelector(t, SelectorOptions{Policy: ordered{}, AttemptTimeout: longAttempt}, ups...)
			r, err := resolve(s, ctxFor(t, testTimeout), query("www.example.", dns.TypeA))
			var re *resolver.Error
			if !errors.As(err, &re) {
				t.Fatalf("got %v, %v; want a *resolver.Error", r, err)
			}
			if re.Code != dns.ExtendedErrorCodeOther || re.Text != "upstreams answered invalidly" {
				t.Errorf("EDE %d %q (%v), want 0 \"upstreams answered invalidly\"", re.Code, re.Text, err)
			}
		})
	}
}
