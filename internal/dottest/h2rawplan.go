package dottest

import (
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/http2/hpack"
)

// reverseWait bounds how long Reverse holds an answer for the others of
// its batch: past it, what is held goes out, newest first.
const reverseWait = 20 * time.Millisecond

// h2plan is how one response is framed.
type h2plan struct {
	headerChunk, dataChunk            int
	padding                           uint8
	trailers, emptyEnd, informational bool
	delay                             time.Duration
}

// planFor is the framing of the response on stream id of connection
// conn: b's, or, when b asks for Random, drawn from b.Seed and the
// stream, so that a failing run can be replayed.
func planFor(b *H2RawBehavior, conn int, id uint32) h2plan {
	p := h2plan{headerChunk: b.HeaderChunk, dataChunk: b.DataChunk, padding: b.Padding,
		trailers: b.Trailers, emptyEnd: b.EmptyEnd, informational: b.Informational}
	if !b.Random {
		return p
	}
	r := rand.New(rand.NewPCG(b.Seed, uint64(conn)<<32|uint64(id)))
	p.headerChunk = []int{0, 1, 5, 16}[r.IntN(4)]
	p.dataChunk = []int{0, 3, 17, 100}[r.IntN(4)]
	p.padding = []uint8{0, 0, 1, 200}[r.IntN(4)]
	p.trailers = r.IntN(4) == 0
	p.emptyEnd = r.IntN(4) == 0
	p.informational = r.IntN(8) == 0
	p.delay = time.Duration(r.IntN(3)) * time.Millisecond // answers overtake each other
	return p
}

// parseRequest returns the status a request earns, and its query when it
// is a DoH query.
func parseRequest(fields []hpack.HeaderField, body []byte) (int, *dns.Msg) {
	var method, path, ctype string
	for _, f := range fields {
		switch f.Name {
		case ":method":
			method = f.Value
		case ":path":
			path = f.Value
		case "content-type":
			ctype = f.Value
		}
	}
	switch {
	case path != DoHPath:
		return http.StatusNotFound, nil
	case method != http.MethodPost:
		return http.StatusMethodNotAllowed, nil
	case ctype != dohMediaType:
		return http.StatusUnsupportedMediaType, nil
	}
	q := new(dns.Msg)
	if err := q.Unpack(body); err != nil || len(q.Question) == 0 {
		return http.StatusBadRequest, nil
	}
	return http.StatusOK, q
}

// ask runs the handler on q and returns its first reply, or nil when
// the connection ends first.
func (c *h2rawConn) ask(q *dns.Msg) *dns.Msg {
	answers := make(chan *dns.Msg, 1)
	h := *c.srv.handler.Load()
	go h(q, func(m *dns.Msg) {
		select {
		case answers <- m:
		default: // a second reply has nowhere to go over HTTP
		}
	})
	select {
	case m := <-answers:
		return m
	case <-c.done:
		return nil
	}
}

// hold keeps send until n answers are held or reverseWait has passed,
// then sends what is held, newest first.
func (c *h2rawConn) hold(n int, send func()) {
	mine := make(chan struct{})
	c.mu.Lock()
	c.held = append(c.held, func() { send(); close(mine) })
	full := len(c.held) >= n
	c.mu.Unlock()
	if full {
		c.release()
		return
	}
	t := time.NewTimer(reverseWait)
	defer t.Stop()
	select {
	case <-mine:
	case <-t.C:
		c.release()
	case <-c.done:
	}
}

func (c *h2rawConn) release() {
	c.mu.Lock()
	batch := c.held
	c.held = nil
	c.mu.Unlock()
	for i := len(batch) - 1; i >= 0; i-- {
		batch[i]()
	}
}
