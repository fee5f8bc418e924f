package upstream

import (
	"bytes"
	"io"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// settingsFrame is a SETTINGS frame with settings, as the reader gets it.
func settingsFrame(t *testing.T, settings ...http2.Setting) *http2.SettingsFrame {
	t.Helper()
	var buf bytes.Buffer
	if err := http2.NewFramer(&buf, nil).WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	f, err := http2.NewFramer(nil, &buf).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	return f.(*http2.SettingsFrame)
}

// TestH2HeaderBlockReuse: the header blocks of a connection's requests,
// some sent again as they are (headerBlock), decode in order, with the
// server's one HPACK decoder, to each request's fields, through lengths
// that change and a server that shrinks its table to nothing and grows it
// back; and a block is sent again only where it was all table references.
func TestH2HeaderBlockReuse(t *testing.T) {
	c := &h2Conn{authority: "dns.example:8443", path: "/dns-query", streams: map[uint32]*h2Stream{},
		wfr: http2.NewFramer(io.Discard, nil), initWindow: 65535}
	c.enc = hpack.NewEncoder(&c.hbuf)
	dec := hpack.NewDecoder(4096, nil)

	steps := []struct {
		length    int
		tableSize int64 // the server's SETTINGS_HEADER_TABLE_SIZE before it, -1 for none
		reused    bool  // whether the block is the one before, sent again
	}{
		{length: 128, tableSize: -1},
		{length: 128, tableSize: -1}, // all in the table now: kept
		{length: 128, tableSize: -1, reused: true},
		{length: 256, tableSize: -1}, // a new length: encoded
		{length: 256, tableSize: -1},
		{length: 256, tableSize: -1, reused: true},
		{length: 128, tableSize: -1}, // still in the table: encoded once, then kept
		{length: 128, tableSize: -1, reused: true},
		{length: 128, tableSize: 0}, // the table dropped: encoded, literals
		{length: 128, tableSize: -1},
		{length: 128, tableSize: 4096}, // the encoder keeps its table at 0
		{length: 128, tableSize: -1},
	}
	var last []byte
	for i, s := range steps {
		if s.tableSize >= 0 {
			dec.SetAllowedMaxDynamicTableSize(uint32(s.tableSize))
			if err := c.onSettings(settingsFrame(t, http2.Setting{ID: http2.SettingHeaderTableSize, Val: uint32(s.tableSize)})); err != nil {
				t.Fatalf("step %d: SETTINGS: %v", i, err)
			}
		}
		c.wmu.Lock()
		reused := c.hreuse && c.hlen == s.length
		block := slices.Clone(c.headerBlock(s.length))
		c.wmu.Unlock()
		if reused != s.reused {
			t.Errorf("step %d: block %x after %x: sent again %v, want %v", i, block, last, reused, s.reused)
		}
		if reused && (!bytes.Equal(block, last) || len(block) != requestFields) {
			t.Errorf("step %d: block %x sent again, after %x", i, block, last)
		}
		last = block
		fields, err := dec.DecodeFull(block)
		if err != nil {
			t.Fatalf("step %d: decoding %x: %v", i, block, err)
		}
		want := []hpack.HeaderField{
			{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "https"},
			{Name: ":authority", Value: "dns.example:8443"}, {Name: ":path", Value: "/dns-query"},
			{Name: "content-type", Value: dohMediaType}, {Name: "accept", Value: dohMediaType},
			{Name: "content-length", Value: strconv.Itoa(s.length)},
		}
		got := make([]hpack.HeaderField, len(fields))
		for j, f := range fields {
			got[j] = hpack.HeaderField{Name: f.Name, Value: f.Value}
		}
		if !slices.Equal(got, want) {
			t.Errorf("step %d: fields %v, want %v", i, got, want)
		}
	}
}
