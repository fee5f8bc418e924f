package cache

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestRareForms: an answer whose records do not pack is kept as dns.RRs
// in the shard's side table and answered from there, fresh and stale; a
// failure remembered beside a stale answer sits there too; a packed
// answer that replaces them, or an eviction, empties the side table, so
// that a slot reused carries nothing of the entry before. The byte count
// follows throughout.
func TestRareForms(t *testing.T) {
	mode := "unpackable"
	up := &fakeUpstream{answer: func(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
		switch mode {
		case "servfail":
			return new(dns.Msg).SetRcode(q, dns.RcodeServerFailure), nil
		case "unpackable":
			m := withA(60, 1)(q)
			m.Answer[0].(*dns.A).A = net.IP{192, 0, 2} // three octets: no wire form
			return m, nil
		}
		return withA(60, 1)(q), nil
	}}
	clk := newClock()
	c, r := newCache(t, Options{Size: 1, Now: clk.Now, ServeStale: true, StaleMaxAge: time.Hour}, up)
	sh := &c.store.shards[0]
	// state returns the flags of name's slot (0 when it has none), the
	// side table's size and the slots the shard holds.
	state := func(name string) (flags uint8, rare, slots int) {
		t.Helper()
		k := key{name: name, qtype: dns.TypeA, qclass: dns.ClassINET}
		st := c.Stats()
		sh.mu.Lock()
		defer sh.mu.Unlock()
		total := 0
		for _, i := range sh.index {
			total += int(sh.slots[i].size)
		}
		if st.Bytes != total {
			t.Fatalf("Bytes %d, entries add up to %d", st.Bytes, total)
		}
		if i := sh.find(&k, k.hash(c.store.seed)); i != 0 {
			flags = sh.slots[i].flags
		}
		return flags &^ (slotDO | slotCD), len(sh.rare), len(sh.slots)
	}
	ask := func(name string) *dns.Msg { return resolve(t, r, query(name, dns.TypeA, true, false)) }
	wantA := func(m *dns.Msg, ttl uint32) {
		t.Helper()
		if len(m.Answer) != 1 {
			t.Fatalf("answer %v", m)
		}
		a, ok := m.Answer[0].(*dns.A)
		if !ok || !a.A.Equal(net.IP{192, 0, 2}) || a.Hdr.Ttl != ttl {
			t.Fatalf("answer %v, want the unpackable A with TTL %d", m.Answer[0], ttl)
		}
	}

	ask("a.example.")
	clk.advance(10 * time.Second)
	wantA(ask("a.example."), 50)
	if up.count() != 1 {
		t.Fatalf("%d upstream queries, want 1: the unpackable answer was not cached", up.count())
	}
	if flags, rare, _ := state("a.example."); flags != slotRare || rare != 1 {
		t.Fatalf("flags %b, %d in the side table: want the answer there", flags, rare)
	}

	clk.advance(time.Minute)
	mode = "servfail"
	m := ask("a.example.")
	wantA(m, staleTTL)
	if flags, rare, _ := state("a.example."); flags != slotRare|slotFail || rare != 1 {
		t.Fatalf("flags %b, %d in the side table: want the stale answer and the failure there", flags, rare)
	}

	clk.advance(DefaultServfailTTL)
	mode = "packable"
	ask("a.example.")
	if flags, rare, _ := state("a.example."); flags != slotPacked || rare != 0 {
		t.Fatalf("flags %b, %d in the side table: want the answer packed, the side table empty", flags, rare)
	}

	mode = "unpackable"
	ask("b.example.") // evicts a: the cache holds one entry
	if flags, rare, _ := state("b.example."); flags != slotRare || rare != 1 {
		t.Fatalf("flags %b, %d in the side table: want b's answer there", flags, rare)
	}
	// Past the first two, each name evicts the one before and takes the
	// slot freed by the one before that: the shard's slots stay the
	// sentinel and two.
	for i, name := range []string{"c.example.", "d.example.", "e.example.", "f.example."} {
		var wantFlags uint8 = slotPacked
		wantRare := 0
		mode = "packable"
		if i%2 == 1 {
			mode, wantFlags, wantRare = "unpackable", slotRare, 1
		}
		ask(name)
		if flags, rare, slots := state(name); flags != wantFlags || rare != wantRare || slots != 3 {
			t.Fatalf("%s: flags %b, %d in the side table, %d slots: want flags %b, %d, 3 slots",
				name, flags, rare, slots, wantFlags, wantRare)
		}
	}
	if st := c.Stats(); st.Entries != 1 || st.Evictions != 5 {
		t.Fatalf("stats %+v, want 1 entry and 5 evictions", st)
	}
}
