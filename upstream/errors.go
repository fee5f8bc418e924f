package upstream

import "errors"

// Errors callers may test with errors.Is.
var (
	// ErrConnClosed: the connection closed before the answer came; the
	// query may be resent on another connection.
	ErrConnClosed = errors.New("connection closed")
	// ErrStalled: the connection stopped answering while still open, and
	// was closed so that its queries fail over at once.
	ErrStalled = errors.New("connection stalled: queries unanswered")
	// ErrNoUpstream: no upstream gave a usable answer.
	ErrNoUpstream = errors.New("no upstream answered")
	// ErrBadAnswer: an answer was not a valid response to the query.
	ErrBadAnswer = errors.New("invalid answer")
	// ErrStreamReset: the query's own stream failed (reset by the
	// server, as a per-request timeout does) on a connection that is
	// fine otherwise: this query has no answer, and the connection keeps
	// serving the others.
	ErrStreamReset = errors.New("the query's stream was reset")
)

// errUnprocessed marks a query's failure the server says it never
// processed (HTTP/2 GOAWAY's last stream ID is below the query's, RFC
// 9113 §6.8; a stream refused, §8.7): resent once, even from a
// connection dialed for it.
var errUnprocessed = errors.New("the server did not process it")

// errPanicked ends a shared query whose resolving panicked: the joiners
// fail with it instead of waiting on it for ever.
var errPanicked = errors.New("resolving the query panicked")
