package main

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestDelayedPipelines checks that a delayed connection holds every
// answer back by the delay, but not each behind the one before it.
func TestDelayedPipelines(t *testing.T) {
	const delay, queries = 100 * time.Millisecond, 5
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := &counters{name: "test"}
	go serveStream(ln, nil, newAnswerer(netip.MustParseAddr("192.0.2.1"), 60), c, delay)

	nc, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	for i := range queries {
		q := new(dns.Msg).SetQuestion("q.bench.example.", dns.TypeA)
		q.Id = uint16(i + 1)
		wire, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(wire))), wire...)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range queries {
		var lenBuf [2]byte
		if _, err := io.ReadFull(nc, lenBuf[:]); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		msg := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(nc, msg); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(msg); err != nil || r.Id != uint16(i+1) {
			t.Fatalf("answer %d: id %d, err %v", i, r.Id, err)
		}
		if i == 0 && time.Since(start) < delay {
			t.Errorf("first answer after %v, before the delay %v", time.Since(start), delay)
		}
	}
	if took := time.Since(start); took > delay*queries/2 {
		t.Errorf("%d pipelined answers took %v: held back one behind another", queries, took)
	}
	if n := c.queries.Load(); n != queries {
		t.Errorf("counted %d queries, want %d", n, queries)
	}
}
