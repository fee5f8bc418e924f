package dottest

import (
	"crypto/tls"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// H2RawOptions configures an H2RawServer.
type H2RawOptions struct {
	Cert    tls.Certificate // the certificate presented
	Handler Handler         // nil: Answer("192.0.2.1")
	// Settings are sent in the server's first SETTINGS frame on every
	// connection: INITIAL_WINDOW_SIZE, MAX_CONCURRENT_STREAMS,
	// MAX_FRAME_SIZE, HEADER_TABLE_SIZE as a test chooses.
	Settings []http2.Setting
	Behavior H2RawBehavior // how it answers, until SetBehavior
}

// H2Fault is what an H2RawServer does to a request instead of answering
// it.
type H2Fault int

// The faults an H2RawServer can play on a request.
const (
	FaultNone         H2Fault = iota
	FaultRefuse               // RST_STREAM REFUSED_STREAM, before any response
	FaultReset                // RST_STREAM INTERNAL_ERROR, before any response
	FaultResetMidBody         // HEADERS, half the body, then RST_STREAM INTERNAL_ERROR
	FaultCloseMidBody         // HEADERS, half the body, then the TCP connection closes
)

// H2FaultRule plays Fault on the requests for one query name, the first
// Times of them (0: every one).
type H2FaultRule struct {
	Fault H2Fault
	Times int
}

// H2RawBehavior is how an H2RawServer frames its answers and which faults
// it plays. Each zero field leaves that part as a plain server does it.
type H2RawBehavior struct {
	// HeaderChunk splits each header block into a HEADERS frame and
	// CONTINUATION frames of at most this many octets.
	HeaderChunk int
	// DataChunk splits each body into DATA frames of at most this many
	// octets (and never more than the client's MAX_FRAME_SIZE).
	DataChunk int
	// Padding pads every HEADERS and DATA frame with this many octets.
	Padding uint8
	// Trailers ends each response with a trailer HEADERS frame.
	Trailers bool
	// EmptyEnd ends each response with an empty DATA frame.
	EmptyEnd bool
	// Informational sends a 103 (Early Hints) response first.
	Informational bool
	// ContentLength sends a content-length header field.
	ContentLength bool
	// ExtraFields are more response header fields.
	ExtraFields []hpack.HeaderField
	// Response overrides the status, content type or body.
	Response Response
	// Reverse holds answers until this many are ready (or reverseWait
	// has passed), then sends them newest first.
	Reverse int
	// Random frames each response its own way (chunks, padding,
	// trailers, a delay that reorders), drawn from Seed.
	Random bool
	Seed   uint64

	// GoAwayAfter sends GOAWAY when a stream opens on a connection that
	// has GoAwayAfter already, naming the last of them as the last one
	// served: that stream and those after it are never answered (a server
	// may name a stream below some it has received, and doing so makes
	// sure some are above it).
	GoAwayAfter int
	// GoAwayClose closes the connection once the streams GOAWAY kept are
	// answered.
	GoAwayClose bool
	// GoAwayConns limits GOAWAY to the first this many connections
	// accepted (0: every one).
	GoAwayConns int
	// Faults are played on the requests for these query names (fully
	// qualified, lower case).
	Faults map[string]H2FaultRule
}
