package admin

import (
	"encoding/json"
	"math"
	"strings"
	"time"
)

// Status is one snapshot of the proxy's figures, as the caller's
// Options.Status func sees them. Counters are cumulative since StartedAt
// (a reload does not reset them); rates are worked out by whoever reads
// two snapshots: the page from successive ones, the server's first render
// from one snapshot and StartedAt.
//
// Its JSON form, served at /api/status, has these stable fields:
//
//	version     string   the program's version
//	started_at  string   RFC 3339 time the process started
//	time        string   RFC 3339 time this snapshot was taken
//	queries     number   client queries received so far, all transports
//	upstreams   array    one UpstreamStatus per configured upstream, in config order
//	cache       object   CacheStatus, or null when the cache is off
//	filter      object   FilterStatus, or null when the filter is off
//	forward     array    one ForwardStatus per forwarding rule, router:'s last; empty when none
//	clients     array    one ClientStatus per busiest client, busiest first; empty when none
type Status struct {
	// Version is the program's version, as -version prints it.
	Version string `json:"version"`
	// StartedAt is when the process started.
	StartedAt time.Time `json:"started_at"`
	// Time is when the snapshot was taken. The server sets it to the
	// current time when the Status func leaves it zero.
	Time time.Time `json:"time"`
	// Queries counts client queries received, over every transport.
	Queries uint64 `json:"queries"`
	// Upstreams lists every configured upstream, in configuration order.
	Upstreams []UpstreamStatus `json:"upstreams"`
	// Cache holds the answer cache's figures; nil when the cache is off.
	Cache *CacheStatus `json:"cache"`
	// Filter holds the filter's figures; nil when the filter is off.
	Filter *FilterStatus `json:"filter"`
	// Forward lists the forwarding rules and their servers.
	Forward []ForwardStatus `json:"forward"`
	// Clients lists the busiest clients, busiest first: the top few of
	// counts kept in bounded memory (see clients.Top).
	Clients []ClientStatus `json:"clients"`
}

// UpstreamStatus is one upstream resolver's state and counters.
//
// JSON fields:
//
//	name           string  the configured name
//	address        string  IP and port, or host name and port
//	transport      string  tls, https, h3 or quic; "" for a forward rule's plain DNS server
//	tls_name       string  the name its certificate must be valid for (omitted when unknown)
//	healthy        bool    false while the health checker has it marked down
//	srtt_ms        number  smoothed round-trip time in milliseconds (fractional); 0 when not yet measured
//	queries        number  queries it answered
//	errors         number  queries to it that failed (error, timeout, SERVFAIL or REFUSED)
//	last_error     string  the most recent failure, "" when none
//	last_error_at  string  RFC 3339 time of last_error (omitted when none)
//	open_conns     number  TLS connections open to it now
type UpstreamStatus struct {
	// Name is the upstream's configured name.
	Name string
	// Address is its IP address, or host name, and port.
	Address string
	// Transport is how it is spoken to: tls, https, h3 or quic; "" for
	// plain DNS.
	Transport string
	// TLSName is the name its certificate must be valid for; optional.
	TLSName string
	// Healthy is false while the health checker has it marked down.
	Healthy bool
	// SRTT is its smoothed round-trip time; zero when not yet measured.
	SRTT time.Duration
	// Queries counts the queries it answered.
	Queries uint64
	// Errors counts the queries to it that failed.
	Errors uint64
	// LastError is the most recent failure's message; empty when none.
	// It comes from the network, so it is shown escaped, never trusted.
	LastError string
	// LastErrorAt is when LastError happened; zero when none.
	LastErrorAt time.Time
	// OpenConns is the number of TLS connections open to it now.
	OpenConns int
}

// upstreamJSON is UpstreamStatus's wire form: snake_case names and the
// RTT in milliseconds, which JavaScript and people both read directly.
type upstreamJSON struct {
	Name        string    `json:"name"`
	Address     string    `json:"address"`
	Transport   string    `json:"transport"`
	TLSName     string    `json:"tls_name,omitempty"`
	Healthy     bool      `json:"healthy"`
	SRTTMillis  float64   `json:"srtt_ms"`
	Queries     uint64    `json:"queries"`
	Errors      uint64    `json:"errors"`
	LastError   string    `json:"last_error"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	OpenConns   int       `json:"open_conns"`
}

// MarshalJSON writes the fields listed in UpstreamStatus's doc comment.
func (u UpstreamStatus) MarshalJSON() ([]byte, error) {
	return json.Marshal(upstreamJSON{
		Name:        u.Name,
		Address:     u.Address,
		Transport:   u.Transport,
		TLSName:     u.TLSName,
		Healthy:     u.Healthy,
		SRTTMillis:  durationMillis(u.SRTT),
		Queries:     u.Queries,
		Errors:      u.Errors,
		LastError:   u.LastError,
		LastErrorAt: u.LastErrorAt,
		OpenConns:   u.OpenConns,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (u *UpstreamStatus) UnmarshalJSON(b []byte) error {
	var j upstreamJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*u = UpstreamStatus{
		Name:        j.Name,
		Address:     j.Address,
		Transport:   j.Transport,
		TLSName:     j.TLSName,
		Healthy:     j.Healthy,
		SRTT:        time.Duration(math.Round(j.SRTTMillis * float64(time.Millisecond))),
		Queries:     j.Queries,
		Errors:      j.Errors,
		LastError:   j.LastError,
		LastErrorAt: j.LastErrorAt,
		OpenConns:   j.OpenConns,
	}
	return nil
}

// durationMillis is d in milliseconds, to the microsecond: finer is noise
// for a round trip over the Internet.
func durationMillis(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

// CacheStatus is the answer cache's counters and size. Every client query
// that reaches the cache is either a hit or a miss; the hit rate is
// Hits / (Hits + Misses).
//
// JSON fields: hits, misses, stale, entries (numbers).
type CacheStatus struct {
	// Hits counts queries answered from a fresh cache entry.
	Hits uint64 `json:"hits"`
	// Misses counts queries not answered from a fresh entry, so sent on
	// to the upstreams (those that ended with a stale answer included).
	Misses uint64 `json:"misses"`
	// Stale counts misses answered with an expired entry (serve-stale,
	// RFC 8767) because the upstreams failed or were slow.
	Stale uint64 `json:"stale"`
	// Entries is the number of answers held now.
	Entries int `json:"entries"`
}

// FilterStatus is the filter's counters and size.
//
// JSON fields: blocked, rules (numbers); pending_lists (array of
// strings, omitted when empty).
type FilterStatus struct {
	// Blocked counts client queries the filter answered instead of the
	// upstreams.
	Blocked uint64 `json:"blocked"`
	// Rules is the number of rules (names and patterns) loaded now.
	Rules int `json:"rules"`
	// Pending names the lists that have not loaded yet (at start-up,
	// before their first download): the filter answers without them.
	Pending []string `json:"pending_lists,omitempty"`
}

// pendingText is what the page adds to the filter's figures while lists
// are pending; "" when none is. status.js writes the same.
func (f *FilterStatus) pendingText() string {
	if len(f.Pending) == 0 {
		return ""
	}
	return " \u00b7 loading " + strings.Join(f.Pending, ", ")
}
