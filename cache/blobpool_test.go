package cache

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// TestPackBlobsShareNoPackerState: blobs are packed with pooled packers
// (a buffer and a compression table) from many goroutines at once. Each
// blob must be what dns.Msg packs for its answer alone, however many
// answers with other names the packer packed before it (a compression
// table not cleared would point a name at an offset of another answer),
// and must stay so while the packers go on packing others (a blob that
// kept the packer's buffer would change under it).
func TestPackBlobsShareNoPackerState(t *testing.T) {
	const (
		workers = 4
		rounds  = 40
	)
	type packing struct {
		k    key
		a    answer
		rrs  rrForm
		want []byte
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var ps []packing
	for i := range 12 {
		// Each answer's names share suffixes with the others', at
		// offsets that differ from one answer to the next.
		zone := fmt.Sprintf("z%d.example.", i%3)
		name := fmt.Sprintf("%sw%d.%s", string(bytes.Repeat([]byte("x"), i)), i, zone)
		rrs := rrForm{
			answer: []dns.RR{rr(fmt.Sprintf("%s 300 IN CNAME e%d.cdn.%s", name, i, zone)),
				rr(fmt.Sprintf("e%d.cdn.%s 60 IN A 192.0.2.%d", i, zone, i+1))},
			ns:    []dns.RR{rr(fmt.Sprintf("%s 3600 IN NS ns%d.%s", zone, i%2, zone))},
			extra: []dns.RR{rr(fmt.Sprintf("ns%d.%s 300 IN AAAA 2001:db8::%x", i%2, zone, i+1))},
		}
		p := packing{k: key{name: name, qtype: dns.TypeA, qclass: dns.ClassINET}, rrs: rrs,
			a: answer{ra: true, ttl: 60, counts: [3]uint16{2, 1, 1}}}
		m := dns.Msg{MsgHdr: dns.MsgHdr{Response: true, RecursionAvailable: true}, Compress: true}
		m.Question = []dns.Question{{Name: name, Qtype: dns.TypeA, Qclass: dns.ClassINET}}
		m.Answer, m.Ns, m.Extra = rrs.answer, rrs.ns, rrs.extra
		var err error
		if p.want, err = m.Pack(); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	first := make([][]byte, len(ps)) // each answer's blob from the first round
	for i := range ps {
		first[i] = packBlob(&ps[i].k, &ps[i].a, &ps[i].rrs)
	}
	errs := make(chan error, workers*rounds*len(ps))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				i := (w + r) % len(ps)
				p := &ps[i]
				// Records of its own, as the cache's answer has:
				// dns.PackRR writes each record's Rdlength.
				rrs := rrForm{answer: copyRRs(p.rrs.answer), ns: copyRRs(p.rrs.ns), extra: copyRRs(p.rrs.extra)}
				b := packBlob(&p.k, &p.a, &rrs)
				if b == nil {
					errs <- fmt.Errorf("%s: not packed", p.k.name)
				} else if got := viewBlob(b).wire; !bytes.Equal(got, p.want) {
					errs <- fmt.Errorf("%s: packed\n%x\nwant\n%x", p.k.name, got, p.want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, b := range first {
		if got := viewBlob(b).wire; !bytes.Equal(got, ps[i].want) || string(blobName(b)) != ps[i].k.name {
			t.Errorf("%s: the first round's blob changed while others were packed:\n%x\nwant\n%x", ps[i].k.name, got, ps[i].want)
		}
	}
}

func copyRRs(rrs []dns.RR) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}
