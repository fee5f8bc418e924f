package listener

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"

	"github.com/miekg/dns"
)

// errZeroLength ends a connection whose client sent an empty message.
var errZeroLength = errors.New("zero-length message")

// readMsg reads one length-prefixed message (RFC 1035 §4.2.2) into *buf,
// growing it as needed, and returns it: valid until the next call.
func readMsg(r io.Reader, prefix []byte, buf *[]byte) ([]byte, error) {
	if _, err := io.ReadFull(r, prefix); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(prefix))
	if n == 0 {
		return nil, errZeroLength
	}
	if cap(*buf) < n {
		*buf = make([]byte, max(n, dns.MinMsgSize))
	}
	raw := (*buf)[:n]
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// wholeBuffered reports whether br holds a whole length-prefixed message
// already read from the connection, so that reading it cannot block.
func wholeBuffered(br *bufio.Reader) bool {
	n := br.Buffered()
	if n < 2 {
		return false
	}
	p, _ := br.Peek(2)
	return n >= 2+int(binary.BigEndian.Uint16(p))
}
