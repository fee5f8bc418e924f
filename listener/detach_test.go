package listener

import (
	"bytes"
	"testing"

	"github.com/dotproxy/dotproxy/resolver"
)

// TestDetach: the worker's copy of a waiting query owns its wire form,
// whether that fits the copy's own room or not, and starts with no
// inline state and an empty record; the reader's reuse of the original
// changes nothing in it.
func TestDetach(t *testing.T) {
	for _, n := range []int{12, detachedWire, detachedWire + 1, 512} {
		wire := bytes.Repeat([]byte{0xAB}, n)
		q := &query{req: resolver.Request{Wire: wire, Name: "example.", Inline: true, Buf: make([]byte, 8)}}
		q.req.Info.SetCached(false)
		w := detach(q)
		for i := range wire {
			wire[i] = 0 // the reader reads the next query into its buffer
		}
		q.req.Name = "other."
		if !bytes.Equal(w.req.Wire, bytes.Repeat([]byte{0xAB}, n)) {
			t.Errorf("%d octets: the detached wire changed with the reader's buffer", n)
		}
		if w.req.Name != "example." || w.req.Inline || w.req.Buf != nil || w.req.Info != (resolver.Info{}) {
			t.Errorf("%d octets: detached %+v, want the query's fields, not inline, no Buf, an empty Info", n, w.req)
		}
	}
}
