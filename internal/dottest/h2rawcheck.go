package dottest

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"golang.org/x/net/http2/hpack"

	"github.com/dotproxy/dotproxy/internal/wire"
)

// checkRequest returns what breaks RFC 8484 in a request: a header field
// beyond what it needs (a user-agent or a cookie tells who asks), a value
// other than its own, a query ID other than 0 (§4.1).
func checkRequest(id uint32, fields []hpack.HeaderField, body []byte) []string {
	var breaches []string
	breach := func(format string, args ...any) {
		breaches = append(breaches, fmt.Sprintf("stream %d: ", id)+fmt.Sprintf(format, args...))
	}
	// Required, with the value each must have ("": any but empty).
	want := map[string]string{":method": "POST", ":scheme": "https", ":authority": "", ":path": "",
		"content-type": dohMediaType}
	allowed := map[string]string{"accept": dohMediaType, "content-length": strconv.Itoa(len(body))}
	seen := map[string]bool{}
	for _, f := range fields {
		if seen[f.Name] {
			breach("header field %s repeated", f.Name)
		}
		seen[f.Name] = true
		v, ok := want[f.Name]
		if !ok {
			if v, ok = allowed[f.Name]; !ok {
				breach("header field %s sent", f.Name)
				continue
			}
		}
		if (v != "" && f.Value != v) || f.Value == "" {
			breach("header field %s: %q, want %q", f.Name, f.Value, v)
		}
	}
	for name := range want {
		if !seen[name] {
			breach("no %s", name)
		}
	}
	if len(body) < wire.HeaderLen {
		breach("a body of %d octets, not a DNS message", len(body))
	} else if qid := binary.BigEndian.Uint16(body); qid != 0 {
		breach("DNS ID %d, want 0 (RFC 8484 §4.1)", qid)
	}
	return breaches
}

// complain records each breach.
func (c *h2rawConn) complain(breaches []string) {
	for _, b := range breaches {
		c.violation("%s", b)
	}
}
