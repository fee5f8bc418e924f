package ratelimit

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// clock is a time that moves only when the test says.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLimiter(t *testing.T, opts Options) (*Limiter, *clock) {
	t.Helper()
	c := newClock()
	opts.Now = c.now
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return l, c
}

// verdicts returns the verdicts on n answers to client, at once.
func verdicts(l *Limiter, client string, n int) []Verdict {
	a := netip.MustParseAddr(client)
	out := make([]Verdict, n)
	for i := range out {
		out[i] = l.Check(a)
	}
	return out
}

func count(vs []Verdict, v Verdict) int {
	n := 0
	for _, x := range vs {
		if x == v {
			n++
		}
	}
	return n
}

// TestBurstThenRate: a prefix gets its burst at once, then one answer
// per interval; idle, it earns the burst back.
func TestBurstThenRate(t *testing.T) {
	l, c := newLimiter(t, Options{ResponsesPerSecond: 20, Burst: 40})
	vs := verdicts(l, "203.0.113.7", 100)
	if n := count(vs[:40], Allow); n != 40 {
		t.Fatalf("%d of the first 40 allowed, want all", n)
	}
	if n := count(vs[40:], Allow); n != 0 {
		t.Fatalf("%d allowed past the burst, want none", n)
	}
	for range 10 {
		c.advance(50 * time.Millisecond)
		if vs := verdicts(l, "203.0.113.7", 3); !slices.Equal(vs[:1], []Verdict{Allow}) || count(vs[1:], Allow) != 0 {
			t.Fatalf("at the steady rate: %v, want one allowed per 50 ms", vs)
		}
	}
	c.advance(time.Minute)
	if n := count(verdicts(l, "203.0.113.7", 40), Allow); n != 40 {
		t.Fatalf("after a minute idle: %d allowed, want the burst of 40", n)
	}
	// Over a long flood the rate holds: 10 s at 1,000 answers a second.
	l2, c2 := newLimiter(t, Options{})
	allowed := 0
	for range 10000 {
		c2.advance(time.Millisecond)
		if l2.Check(netip.MustParseAddr("198.51.100.1")) == Allow {
			allowed++
		}
	}
	if want := DefaultBurst + 10*DefaultResponsesPerSecond; allowed < want-1 || allowed > want+1 {
		t.Errorf("%d allowed in 10 s of flood, want the burst and 20/s: %d", allowed, want)
	}
}

// TestSlip: of the limited answers, every slip-th slips and the rest
// are dropped; NoSlip drops them all.
func TestSlip(t *testing.T) {
	tests := []struct {
		slip int
		want []Verdict
	}{
		{0, []Verdict{Drop, Slip, Drop, Slip, Drop, Slip}}, // the default, 2
		{1, []Verdict{Slip, Slip, Slip, Slip, Slip, Slip}},
		{3, []Verdict{Drop, Drop, Slip, Drop, Drop, Slip}},
		{NoSlip, []Verdict{Drop, Drop, Drop, Drop, Drop, Drop}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.slip), func(t *testing.T) {
			l, _ := newLimiter(t, Options{Burst: 1, Slip: tt.slip})
			vs := verdicts(l, "203.0.113.7", 7)
			if vs[0] != Allow || !slices.Equal(vs[1:], tt.want) {
				t.Errorf("verdicts %v, want allow then %v", vs, tt.want)
			}
			st := l.Stats()
			if st.Allowed != 1 || int(st.Dropped) != count(tt.want, Drop) || int(st.Slipped) != count(tt.want, Slip) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestPrefixes: clients share a bucket by prefix, IPv4 by /24 and IPv6
// by /56 by default; an IPv4-mapped address is its IPv4 one; exempt
// clients are never limited nor counted.
func TestPrefixes(t *testing.T) {
	l, _ := newLimiter(t, Options{Burst: 2, Exempt: Private})
	tests := []struct {
		name    string
		clients []string
		limited bool
	}{
		{"one /24", []string{"203.0.113.1", "203.0.113.200", "::ffff:203.0.113.9"}, true},
		{"two /24s", []string{"198.51.100.1", "198.51.101.1"}, false},
		{"one /56", []string{"2001:db8:0:100::1", "2001:db8:0:1ff::1", "2001:db8:0:100::2"}, true},
		{"two /56s", []string{"2001:db8:1:100::1", "2001:db8:1:200::1"}, false},
		{"LAN", []string{"192.168.1.10", "192.168.1.10", "192.168.1.10", "10.1.2.3", "fd00::1", "fd00::1", "fd00::1"}, false},
		{"loopback", []string{"127.0.0.1", "127.0.0.1", "127.0.0.1", "::1", "::1", "::1"}, false},
	}
	for _, tt := range tests {
		var vs []Verdict
		for _, c := range tt.clients {
			vs = append(vs, l.Check(netip.MustParseAddr(c)))
		}
		if limited := count(vs, Allow) != len(vs); limited != tt.limited {
			t.Errorf("%s: verdicts %v; want limited %v", tt.name, vs, tt.limited)
		}
	}
	if st := l.Stats(); st.Prefixes != 6 {
		t.Errorf("%d prefixes tracked, want 6 (none for exempt clients)", st.Prefixes)
	}

	l4, _ := newLimiter(t, Options{Burst: 1, IPv4Prefix: 32, IPv6Prefix: 128})
	if vs := []Verdict{l4.Check(netip.MustParseAddr("203.0.113.1")), l4.Check(netip.MustParseAddr("203.0.113.2"))}; count(vs, Allow) != 2 {
		t.Errorf("/32: two addresses limited together: %v", vs)
	}
}

// TestTableBounded: a flood from ever new forged prefixes keeps the table
// at its size, and the victim's prefix, still under attack, stays
// limited throughout: it is the most recently used.
func TestTableBounded(t *testing.T) {
	l, c := newLimiter(t, Options{MaxPrefixes: 4096})
	victim := netip.MustParseAddr("203.0.113.7")
	verdicts(l, "203.0.113.7", DefaultBurst)
	for i := range 200000 {
		a := netip.AddrFrom4([4]byte{10 + byte(i>>16), byte(i >> 8), byte(i), 1})
		l.Check(a)
		if i%100 == 0 {
			// The attack on the victim goes on: an answer a millisecond,
			// far over its rate, so its bucket stays spent.
			c.advance(time.Millisecond)
			l.Check(victim)
		}
	}
	if st := l.Stats(); st.Prefixes > 4096 {
		t.Errorf("%d prefixes tracked, bound 4096", st.Prefixes)
	}
	// The victim's bucket survived: still spent, so a burst is refused.
	if n := count(verdicts(l, "203.0.113.7", DefaultBurst), Allow); n == DefaultBurst {
		t.Errorf("the victim's prefix was forgotten under the flood: a whole burst allowed again")
	}
}

// TestConcurrent: from many goroutines with no time passing, exactly the
// burst is allowed and every verdict counted.
func TestConcurrent(t *testing.T) {
	l, _ := newLimiter(t, Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				l.Check(netip.AddrFrom4([4]byte{203, 0, 113, byte(g*31 + i)}))
			}
		})
	}
	wg.Wait()
	st := l.Stats()
	if st.Allowed != DefaultBurst || st.Allowed+st.Dropped+st.Slipped != 8000 || st.Prefixes != 1 {
		t.Errorf("stats %+v, want %d allowed of 8000 from one prefix", st, DefaultBurst)
	}
}

// TestExtremeOptions: a huge rate or burst still limits as it says, with
// no overflow turning it into "limit everything".
func TestExtremeOptions(t *testing.T) {
	for _, o := range []Options{{ResponsesPerSecond: math.MaxInt, Burst: 1}, {ResponsesPerSecond: 1, Burst: math.MaxInt}} {
		l, _ := newLimiter(t, o)
		if n := count(verdicts(l, "203.0.113.7", 1000), Allow); n == 0 {
			t.Errorf("%+v: nothing allowed", o)
		}
	}
}

func TestNewChecksOptions(t *testing.T) {
	for _, o := range []Options{{IPv4Prefix: 33}, {IPv6Prefix: 129}, {IPv4Prefix: -1}, {ResponsesPerSecond: -5}, {Slip: -2}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestModeEnabled(t *testing.T) {
	p := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	tests := []struct {
		mode  Mode
		allow []netip.Prefix
		want  bool
	}{
		{Auto, Private, false},
		{Auto, p("192.168.1.0/24", "fd12:3456::/48"), false},
		{Auto, p("192.168.0.0/15"), true}, // reaches 192.169.x.x
		{Auto, append(p("203.0.113.0/24"), Private...), true},
		{Auto, p("0.0.0.0/0", "::/0"), true},
		{Auto, p("2001:db8::/32"), true},
		{On, Private, true},
		{Off, p("0.0.0.0/0"), false},
	}
	for _, tt := range tests {
		if got := tt.mode.Enabled(tt.allow); got != tt.want {
			t.Errorf("%v.Enabled(%v) = %v, want %v", tt.mode, tt.allow, got, tt.want)
		}
	}
	for s, want := range map[string]Mode{"auto": Auto, "true": On, "false": Off, "yes": On, "off": Off} {
		if m, err := ParseMode(s); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", s, m, err, want)
		}
	}
	if _, err := ParseMode("sometimes"); err == nil {
		t.Error("ParseMode accepted sometimes")
	}
}

// BenchmarkCheck is one verdict: for a LAN client (exempt), and for a
// limited prefix from every core.
func BenchmarkCheck(b *testing.B) {
	l, err := New(Options{Exempt: Private})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("exempt", func(b *testing.B) {
		a := netip.MustParseAddr("192.168.1.20")
		for b.Loop() {
			l.Check(a)
		}
	})
	b.Run("limited parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			a := netip.MustParseAddr("203.0.113.7")
			for pb.Next() {
				l.Check(a)
			}
		})
	})
}
