// Package ratelimit is response rate limiting (RRL) for answers sent over
// UDP, where the source address is not proven: a query with a forged
// source makes dotproxy send its answer to a victim, and without a limit
// every query a botnet sends becomes an answer at that victim. As in
// BIND and Knot, clients are grouped by network prefix (/24, /56), each
// group has a token bucket of answers per second, and of the answers over
// the limit every slip-th goes out truncated, so that a real client
// behind the prefix retries over TCP (which proves its address), while
// the others are dropped. Exempt prefixes, the LAN by default, are never
// limited.
//
// It owns the decision and its counters. It does not see queries or
// answers, build the truncated answer or cap the answer's size; the
// listener asks Check once per UDP answer and acts on the verdict.
package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync/atomic"
	"time"
)

// Defaults for Options' zero values, BIND's but for the burst, which
// BIND spreads over a 15 s window.
const (
	// DefaultResponsesPerSecond is the steady rate to one prefix.
	DefaultResponsesPerSecond = 20
	// DefaultBurst is two seconds' worth: a page load's lookups pass.
	DefaultBurst = 40
	// DefaultSlip: every second limited answer slips.
	DefaultSlip = 2
	// DefaultIPv4Prefix groups a subnet: one customer of an ISP, or one
	// victim.
	DefaultIPv4Prefix = 24
	// DefaultIPv6Prefix is what an ISP delegates to one home (RFC 6177).
	DefaultIPv6Prefix = 56
	// DefaultMaxPrefixes bounds the table: a flood with ever new forged
	// sources pushes out the prefixes unused for longest, and memory
	// stays some hundred bytes per prefix.
	DefaultMaxPrefixes = 1 << 16
)

// maxShards bounds the table's lock shards: more buys nothing on a
// router's few cores.
const maxShards = 16

// Verdict is what to do with one answer.
type Verdict int

const (
	// Allow: send the answer.
	Allow Verdict = iota
	// Drop: send nothing.
	Drop
	// Slip: send, instead of the answer, the query's header and question
	// with TC set and no records, so that a real client retries over TCP.
	Slip
)

// String names v for logs and tests.
func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Drop:
		return "drop"
	case Slip:
		return "slip"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Options configures a Limiter. Zero values take the defaults; Slip is
// the exception, see NoSlip.
type Options struct {
	ResponsesPerSecond int            // answers per second to one prefix, once its burst is spent
	Burst              int            // answers a prefix may receive at once
	Slip               int            // every Slip-th limited answer slips (1: all; NoSlip: none); 0: DefaultSlip
	IPv4Prefix         int            // bits of an IPv4 client address that make its prefix
	IPv6Prefix         int            // bits of an IPv6 client address that make its prefix
	Exempt             []netip.Prefix // clients never limited; nil: none
	MaxPrefixes        int            // most prefixes tracked at once
	Now                func() time.Time
}

// NoSlip as Options.Slip drops every limited answer.
const NoSlip = -1

// Limiter decides, answer by answer, whether a client's prefix is over
// its rate. It is safe for concurrent use.
type Limiter struct {
	opts     Options
	interval time.Duration // between two answers at the steady rate
	window   time.Duration // interval × burst: how far ahead a prefix may run
	seed     maphash.Seed
	shards   []shard

	allowed, dropped, slipped atomic.Uint64
}

// Stats counts the verdicts so far. Exempt clients' answers are not
// counted.
type Stats struct {
	Allowed, Dropped, Slipped uint64
	Prefixes                  int // tracked now
}

// New checks opts and returns a Limiter.
func New(opts Options) (*Limiter, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&opts.ResponsesPerSecond, DefaultResponsesPerSecond)
	def(&opts.Burst, DefaultBurst)
	def(&opts.Slip, DefaultSlip)
	def(&opts.IPv4Prefix, DefaultIPv4Prefix)
	def(&opts.IPv6Prefix, DefaultIPv6Prefix)
	def(&opts.MaxPrefixes, DefaultMaxPrefixes)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var errs []error
	if opts.ResponsesPerSecond < 0 || opts.Burst < 0 || opts.MaxPrefixes < 0 {
		errs = append(errs, errors.New("ratelimit: rate, burst and table size must be positive"))
	}
	if opts.Slip < NoSlip {
		errs = append(errs, fmt.Errorf("ratelimit: slip %d is below NoSlip", opts.Slip))
	}
	if opts.IPv4Prefix < 1 || opts.IPv4Prefix > 32 || opts.IPv6Prefix < 1 || opts.IPv6Prefix > 128 {
		errs = append(errs, fmt.Errorf("ratelimit: prefix lengths /%d and /%d out of range", opts.IPv4Prefix, opts.IPv6Prefix))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// A rate beyond a billion a second is no limit, and a window beyond
	// a day no less of one than a day: both keep the arithmetic in range.
	interval := max(time.Second/time.Duration(opts.ResponsesPerSecond), 1)
	window := interval * time.Duration(min(int64(opts.Burst), int64(24*time.Hour/interval)))
	n := 1
	for n < maxShards && n*2*1024 <= opts.MaxPrefixes {
		n *= 2
	}
	l := &Limiter{opts: opts, interval: interval, window: window,
		seed: maphash.MakeSeed(), shards: make([]shard, n)}
	for i := range l.shards {
		l.shards[i].init((opts.MaxPrefixes + n - 1) / n)
	}
	return l, nil
}

// Check returns the verdict on one answer to client, and counts it
// against the client's prefix: call it once per answer about to be sent
// over UDP, after any truncation to the client's size.
func (l *Limiter) Check(client netip.Addr) Verdict {
	client = client.Unmap()
	if !client.IsValid() || l.exempt(client) {
		return Allow
	}
	bits := l.opts.IPv4Prefix
	if client.Is6() {
		bits = l.opts.IPv6Prefix
	}
	p, _ := client.WithZone("").Prefix(bits) // bits are in range for the family
	over, n := l.shard(p).take(p, l.opts.Now(), l.interval, l.window)
	switch {
	case !over:
		l.allowed.Add(1)
		return Allow
	case l.opts.Slip > 0 && n%uint64(l.opts.Slip) == 0:
		l.slipped.Add(1)
		return Slip
	}
	l.dropped.Add(1)
	return Drop
}

func (l *Limiter) exempt(a netip.Addr) bool {
	for _, p := range l.opts.Exempt {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (l *Limiter) shard(p netip.Prefix) *shard {
	return &l.shards[maphash.Comparable(l.seed, p)%uint64(len(l.shards))]
}

// Stats returns the counters so far.
func (l *Limiter) Stats() Stats {
	st := Stats{Allowed: l.allowed.Load(), Dropped: l.dropped.Load(), Slipped: l.slipped.Load()}
	for i := range l.shards {
		st.Prefixes += l.shards[i].len()
	}
	return st
}
