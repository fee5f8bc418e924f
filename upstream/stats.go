package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ErrorKind sorts an upstream's failures for the metrics: what broke,
// not which query.
type ErrorKind int

// The kinds of failure an Upstream counts. ErrorServFail and
// ErrorRefused count answers (also counted in Answers) that the selector
// fails over from; the others count exchanges that got no answer.
const (
	ErrorTimeout    ErrorKind = iota // no answer in time, or the connection stalled
	ErrorConnection                  // refused, reset or closed: TCP-level trouble
	ErrorTLS                         // handshake, certificate, name or pin check failed
	ErrorBadAnswer                   // an answer that does not parse or check, or a stream the server reset
	ErrorServFail                    // answered SERVFAIL
	ErrorRefused                     // answered REFUSED
	numErrorKinds
)

var errorKindNames = [numErrorKinds]string{"timeout", "connection", "tls", "bad_answer", "servfail", "refused"}

// String is the kind's name as metrics label it: timeout, connection,
// tls, bad_answer, servfail, refused.
func (k ErrorKind) String() string {
	if k < 0 || k >= numErrorKinds {
		return "unknown"
	}
	return errorKindNames[k]
}

// ErrorCounts holds one count per ErrorKind, indexed by it.
type ErrorCounts [numErrorKinds]uint64

// Total is the sum of every kind.
func (e ErrorCounts) Total() uint64 {
	var n uint64
	for _, c := range e {
		n += c
	}
	return n
}

// UpstreamStats is a snapshot of one upstream's state and counters, for
// metrics and the status page. The counters start at zero when the
// Upstream is built; one kept across a reload keeps counting.
type UpstreamStats struct {
	Name      string
	Address   string // IP and port, or host name and port
	Transport string // tls, https, h3, quic; "" for plain DNS
	TLSName   string // the name its certificate must be valid for
	Healthy   bool   // the health checker's last verdict
	SRTT      time.Duration
	OpenConns int

	// Queries counts exchanges started, health probes included; each
	// ends as one of Answers, a non-answer kind of Errors, or Abandoned.
	Queries uint64
	// Answers counts the valid responses received, whatever their rcode.
	Answers uint64
	// Errors counts failures by kind.
	Errors ErrorCounts
	// Abandoned counts exchanges given up unanswered and unfailed:
	// another upstream answered first (hedging), or the query's
	// caller went away.
	Abandoned uint64
	// Failovers counts the times the selector moved a query on to
	// another upstream because this one failed or was slow (a hedge).
	Failovers uint64

	LastError   string    // the last failure's text; "" when none
	LastErrorAt time.Time // zero when none

	// RTT is the distribution of the answered round trips, the ones
	// SRTT averages.
	RTT RTTHistogram
}

// RTTHistogram is a distribution of round-trip times in fixed buckets.
type RTTHistogram struct {
	// Bounds are the buckets' upper bounds, ascending.
	Bounds []time.Duration
	// Counts has one more element than Bounds: Counts[i] counts the
	// samples above Bounds[i-1] and at most Bounds[i]; the last counts
	// those above every bound. They are not cumulative.
	Counts []uint64
	// Sum is the total of every sample.
	Sum time.Duration
}

// Count is the number of samples.
func (h RTTHistogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// rttBounds are the RTT histogram's buckets: from a resolver on the LAN
// (under a millisecond) to the attempt timeout's neighbourhood.
var rttBounds = [...]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// counters are an Upstream's running totals. They are kept here, with
// atomics, rather than pushed to an observer, so that they live and die
// with the Upstream: a reload that keeps it keeps them, one that drops it
// drops them, and nothing outside has to follow.
type counters struct {
	queries, answers, abandoned, failovers atomic.Uint64
	errors                                 [numErrorKinds]atomic.Uint64
	rtt                                    [len(rttBounds) + 1]atomic.Uint64
	rttSum                                 atomic.Int64
}

// answered counts an answer that took d, with its rcode: SERVFAIL and
// REFUSED are failures too, which the selector fails over from.
func (c *counters) answered(d time.Duration, rcode int) {
	c.answers.Add(1)
	c.observeRTT(d)
	switch rcode {
	case dns.RcodeServerFailure:
		c.errors[ErrorServFail].Add(1)
	case dns.RcodeRefused:
		c.errors[ErrorRefused].Add(1)
	}
}

func (c *counters) observeRTT(d time.Duration) {
	i := 0
	for i < len(rttBounds) && d > rttBounds[i] {
		i++
	}
	c.rtt[i].Add(1)
	c.rttSum.Add(int64(d))
}

// lastError is the last failure, for the status page.
type lastError struct {
	msg string
	at  time.Time
}

// Stats returns a snapshot of the upstream's state and counters. The
// counters are read one by one, not at one instant.
func (u *Upstream) Stats() UpstreamStats {
	s := u.stats(u.name, u.ep.String(), u.Healthy())
	s.Transport = u.transport.String()
	s.TLSName = u.tlsName
	s.OpenConns = u.OpenConns()
	return s
}

// classify sorts a failed exchange's error. Context cancellation is no
// failure and is not classified: the caller counts it as abandoned.
func classify(err error) ErrorKind {
	var de *dialError
	switch {
	case isTimeout(err) || errors.Is(err, ErrStalled):
		return ErrorTimeout
	case errors.Is(err, ErrBadAnswer), errors.Is(err, ErrStreamReset):
		return ErrorBadAnswer
	case errors.As(err, &de):
		return classifyDial(de.err)
	}
	return ErrorConnection
}

// classifyDial sorts a failure to connect: anything that is not the
// network's doing happened in the TLS handshake. (A remote TLS alert
// comes as a *net.OpError too, with Op "remote error".)
func classifyDial(err error) ErrorKind {
	var op *net.OpError
	switch {
	case isTimeout(err):
		return ErrorTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, ErrConnClosed):
		return ErrorConnection
	case errors.As(err, &op) && (op.Op == "dial" || op.Op == "read" || op.Op == "write"):
		return ErrorConnection
	}
	return ErrorTLS
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// dialError marks a failure to connect (TCP and TLS handshake), so that
// classify can tell a handshake's failure from a query's. It reads as
// the error it wraps.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }
