package cache

import (
	"testing"

	"github.com/miekg/dns"
)

// TestKeySeparation: the name is compared without regard to case; type,
// class, DO and CD each make another entry, so that an answer fetched
// with CD=1 (or without DNSSEC records) never answers a query that did
// not ask the same way.
func TestKeySeparation(t *testing.T) {
	type ask struct {
		name   string
		qtype  uint16
		class  uint16
		do, cd bool
	}
	base := ask{name: "example.com.", qtype: dns.TypeA, class: dns.ClassINET}
	for _, tc := range []struct {
		name    string
		second  ask
		wantHit bool
	}{
		{"same", base, true},
		{"other case", ask{name: "ExAmPlE.CoM.", qtype: dns.TypeA, class: dns.ClassINET}, true},
		{"other name", ask{name: "example.org.", qtype: dns.TypeA, class: dns.ClassINET}, false},
		{"other type", ask{name: "example.com.", qtype: dns.TypeAAAA, class: dns.ClassINET}, false},
		{"other class", ask{name: "example.com.", qtype: dns.TypeA, class: dns.ClassCHAOS}, false},
		{"DO set", ask{name: "example.com.", qtype: dns.TypeA, class: dns.ClassINET, do: true}, false},
		{"CD set", ask{name: "example.com.", qtype: dns.TypeA, class: dns.ClassINET, cd: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := answering(withA(300, 1))
			_, r := newCache(t, Options{Now: newClock().Now}, up)
			for _, a := range []ask{base, tc.second} {
				q := query(a.name, a.qtype, true, a.do)
				q.Question[0].Qclass = a.class
				q.CheckingDisabled = a.cd
				m := resolve(t, r, q)
				if m.Question[0] != q.Question[0] {
					t.Errorf("question %v, want the client's %v", m.Question[0], q.Question[0])
				}
				if m.CheckingDisabled != a.cd {
					t.Errorf("CD %v, want %v", m.CheckingDisabled, a.cd)
				}
			}
			want := int64(2)
			if tc.wantHit {
				want = 1
			}
			if up.count() != want {
				t.Fatalf("%d upstream queries, want %d", up.count(), want)
			}
		})
	}
}

// TestHitHonoursClient: a hit carries the client's ID, question (letter
// case too, for 0x20) and RD bit, AD only when the client asked for it
// (RFC 6840 §5.8), and an OPT record only when the client sent one.
func TestHitHonoursClient(t *testing.T) {
	up := answering(func(q *dns.Msg) *dns.Msg {
		m := withA(300, 1)(q)
		m.AuthenticatedData = true
		return m
	})
	_, r := newCache(t, Options{Now: newClock().Now}, up)
	resolve(t, r, query("example.com.", dns.TypeA, true, false))
	for _, tc := range []struct {
		name   string
		qname  string
		edns   bool
		rd, ad bool
		wantAD bool
	}{
		{"plain", "example.com.", false, true, false, false},
		{"0x20", "eXaMpLe.cOm.", true, true, false, false},
		{"AD asked", "example.com.", true, true, true, true},
		{"RD clear", "EXAMPLE.com.", false, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := query(tc.qname, dns.TypeA, tc.edns, false)
			q.Id = 0xbeef
			q.RecursionDesired, q.AuthenticatedData = tc.rd, tc.ad
			m := resolve(t, r, q)
			if m.Id != 0xbeef || !m.Response || m.Question[0].Name != tc.qname {
				t.Errorf("ID %#x question %q, want %#x %q", m.Id, m.Question[0].Name, 0xbeef, tc.qname)
			}
			if m.RecursionDesired != tc.rd || m.AuthenticatedData != tc.wantAD || !m.RecursionAvailable {
				t.Errorf("RD %v AD %v RA %v, want %v %v true", m.RecursionDesired, m.AuthenticatedData, m.RecursionAvailable, tc.rd, tc.wantAD)
			}
			if (m.IsEdns0() != nil) != tc.edns {
				t.Errorf("OPT %v with client EDNS %v", m.IsEdns0(), tc.edns)
			}
		})
	}
	if up.count() != 1 {
		t.Fatalf("%d upstream queries, want 1", up.count())
	}
}

// TestCollision: two keys forced onto one hash never answer for each
// other; the one stored last holds the slot.
func TestCollision(t *testing.T) {
	clk := newClock()
	c := New(Options{Now: clk.Now})
	t.Cleanup(c.Close)
	const h = 42 // both keys' hash, forced
	a := key{name: "a.example.", qtype: dns.TypeA, qclass: dns.ClassINET}
	b := key{name: "b.example.", qtype: dns.TypeA, qclass: dns.ClassINET}
	store := func(k key) {
		f, leader := c.join(&k, h, false)
		if !leader {
			t.Fatalf("joined another key's flight for %s", k.name)
		}
		q := k.request().Msg()
		c.settle(f, withA(300, 1)(q), nil)
	}
	lookupName := func(k key) string {
		r, _ := c.lookup(&k, h, clk.Now(), false)
		if r.outcome != hit {
			return ""
		}
		a := r.fresh.view()
		an, _, _ := a.sections()
		return an[0].Header().Name
	}

	store(a)
	if got := lookupName(b); got != "" {
		t.Fatalf("lookup of %s under %s's hash answered with %s", b.name, a.name, got)
	}
	if got := lookupName(a); got != a.name {
		t.Fatalf("lookup of %s: %q", a.name, got)
	}
	store(b)
	if got := lookupName(b); got != b.name {
		t.Fatalf("lookup of %s: %q", b.name, got)
	}
	if got := lookupName(a); got != "" {
		t.Fatalf("lookup of %s after %s took the slot: %q", a.name, b.name, got)
	}
	if st := c.Stats(); st.Entries != 1 {
		t.Fatalf("%d entries, want 1", st.Entries)
	}

	// A miss on b while a's query is in flight under the same hash runs
	// its own query instead of taking a's answer.
	fa, _ := c.join(&a, h, false)
	if fb, leader := c.join(&b, h, false); !leader || fb == fa {
		t.Fatal("b joined a's flight")
	}
	c.settle(fa, withA(300, 1)(a.request().Msg()), nil)
}

func TestKeyHashFoldsCase(t *testing.T) {
	c := New(Options{})
	t.Cleanup(c.Close)
	long := make([]byte, 300) // beyond the stack buffer
	for i := range long {
		long[i] = 'A' + byte(i%26)
	}
	for _, name := range []string{"example.com.", string(long) + "."} {
		lo := key{name: name, qtype: 1, qclass: 1}.folded()
		up := key{name: name, qtype: 1, qclass: 1}
		if lo.hash(c.store.seed) != up.hash(c.store.seed) || !lo.matches(&up) {
			t.Errorf("%.20s…: case changes the key", name)
		}
		if other := (key{name: name, qtype: 1, qclass: 1, do: true}); other.hash(c.store.seed) == up.hash(c.store.seed) {
			t.Errorf("%.20s…: DO does not change the hash", name)
		}
	}
}
