package filter

import "time"

// Stats is a snapshot of the filter's counters and of its lists' state,
// for logs and metrics.
type Stats struct {
	// Blocked counts the queries that got a block answer, Cloaked
	// included.
	Blocked uint64
	// Cloaked counts the queries blocked because of a name in the
	// upstream answer's CNAME chain.
	Cloaked uint64
	// Local counts the queries answered from local records or a
	// locally served zone.
	Local uint64
	// Lists is every list, each once: the global blocklists and
	// allowlists, then those the groups add, in configuration order.
	Lists []ListStats
}

// ListStats is one list's state.
type ListStats struct {
	Source    string // file path or URL, as configured
	Name      string // Source fit to show: ListName(Source)
	Allow     bool   // an allowlist
	Rules     int    // distinct names in the version in use
	Malformed int    // lines skipped when the version in use was parsed
	Blocked   uint64 // queries blocked by one of its rules
	// LoadedAt is when the version in use was loaded: downloaded, read
	// from the file, or read from the on-disk copy.
	LoadedAt time.Time
	// Pending says that the list has no version yet: it has never
	// loaded, and the filter answers as if it were empty.
	Pending bool
	// FromCache says that the version in use is the on-disk copy,
	// loaded at start; it turns false at the first successful fetch.
	FromCache bool
	// LastAttempt is when the list was last loaded or tried.
	LastAttempt time.Time
	// LastError says why the last attempt failed; empty when it
	// succeeded.
	LastError string
	// Failures counts the failed attempts.
	Failures uint64
}

// Stats returns the current counters and list states.
func (f *Filter) Stats() Stats {
	s := Stats{
		Blocked: f.blocked.Load(),
		Cloaked: f.cloaked.Load(),
		Local:   f.answeredLocally.Load(),
		Lists:   make([]ListStats, len(f.lists)),
	}
	for i, l := range f.lists {
		s.Lists[i] = l.stats()
	}
	return s
}
