//go:build !linux

package listener

import (
	"errors"
	"net"
)

// oobSize is zero: without packet info there are no control messages.
const oobSize = 0

// enablePktinfo is only implemented on Linux, where dotproxy runs on
// routers; elsewhere replies leave from the address the kernel picks.
func enablePktinfo(*net.UDPConn, bool) error {
	return errors.New("packet info not supported on this platform")
}

func parseDst([]byte, bool) replySrc { return replySrc{} }

func (replySrc) appendOOB(dst []byte) []byte { return dst }
