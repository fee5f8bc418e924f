package dottest

import (
	"encoding/binary"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
)

// StreamHandler takes over one DoQ stream instead of the Handler: it may
// write anything on it (WriteRaw), reset it (ResetStream), close the
// connection (CloseConn), or answer as the server would (Reply). q is the
// query read from the stream.
type StreamHandler func(q *dns.Msg, s *quic.Stream, c *quic.Conn)

// Reply writes m on the stream with its length, as a DoQ server answers,
// and ends the stream.
func Reply(st *quic.Stream, m *dns.Msg) {
	buf, err := m.Pack()
	if err != nil {
		st.CancelWrite(0)
		return
	}
	writeAndEnd(st, append(binary.BigEndian.AppendUint16(nil, uint16(len(buf))), buf...))
}

// WriteRaw writes b on the stream as it is, length and all, and ends the
// stream: a truncated answer, a wrong length, garbage.
func WriteRaw(b []byte) StreamHandler {
	return func(_ *dns.Msg, st *quic.Stream, _ *quic.Conn) { writeAndEnd(st, b) }
}

func writeAndEnd(st *quic.Stream, b []byte) {
	if _, err := st.Write(b); err == nil {
		st.Close()
	}
}

// ResetStream resets the stream with code instead of answering.
func ResetStream(code quic.StreamErrorCode) StreamHandler {
	return func(_ *dns.Msg, st *quic.Stream, _ *quic.Conn) {
		st.CancelWrite(code)
	}
}

// CloseConn closes the stream's whole connection with code instead of
// answering.
func CloseConn(code quic.ApplicationErrorCode) StreamHandler {
	return func(_ *dns.Msg, _ *quic.Stream, c *quic.Conn) {
		c.CloseWithError(code, "")
	}
}
