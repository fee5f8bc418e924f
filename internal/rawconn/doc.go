// Package rawconn reads and writes TCP sockets with raw system calls,
// waiting for readiness in Go's network poller as net.Conn does: on Linux,
// where a query at a low rate would otherwise wake the runtime's monitor
// thread on every read and write. It owns nothing else: no buffering, no
// framing. Elsewhere it leaves the sockets to Go.
package rawconn
