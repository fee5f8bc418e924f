package resolver

import (
	"net/netip"
	"time"
)

// QueryEvent is one answered client query, as the listener reports it to
// whoever watches (the metrics, the query log). Queries dropped without an
// answer (too short to reply to, or responses) make none.
type QueryEvent struct {
	// Time is when the query was received.
	Time time.Time
	// Client is the address and port the query came from.
	Client netip.AddrPort
	// Transport is how the query came.
	Transport Transport
	// Name and Qtype are the question, as the client wrote it; empty
	// and 0 when the query had none that could be read (FORMERR).
	Name  string
	Qtype uint16
	// Rcode is the answer's response code (dns.Rcode*, extended codes
	// such as BADVERS included).
	Rcode int
	// Size is the answer's packed length in bytes.
	Size int
	// Duration is the time from receiving the query to its answer
	// being packed.
	Duration time.Duration
	// Truncated: the answer did not fit the client's UDP size and went
	// out with TC set.
	Truncated bool
	// Info is what the resolver chain recorded: which upstream
	// answered, or whether the cache or the filter did. It is zero for
	// queries refused or rejected before the resolver.
	Info Info
}
