package listener

import (
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/dotproxy/dotproxy/internal/rawconn"
)

// TestTCPWriteYieldsOnlyForCompany: an answer yields before its write
// only when other queries of its connection are being answered, whose
// answers may then share the write; a lone answer is written at once.
// With one P, a goroutine started just before the write runs before the
// write returns only if the write yields. A yield does not always let it
// run first (the scheduler now and then takes the yielding goroutine
// back at once), so each case writes several times.
func TestTCPWriteYieldsOnlyForCompany(t *testing.T) {
	const writes = 10
	s, _ := startServer(t, Options{})
	for _, tc := range []struct {
		name      string
		busy      int
		wantYield bool
	}{
		{"lone answer", 1, false},
		{"others in flight", 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := dottest.TCPPair(t)
			c := &tcpConn{conn: rawconn.Wrap(server), srv: s, sem: make(chan struct{}, 4), busy: tc.busy}
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			yields := 0
			for range writes {
				var ran atomic.Bool
				go func() { ran.Store(true) }()
				if err := c.write([]byte{0, 1, 2, 3}); err != nil {
					t.Fatalf("write: %v", err)
				}
				if ran.Load() {
					yields++
				}
				for deadline := time.Now().Add(ioTimeout); !ran.Load(); {
					if time.Now().After(deadline) {
						t.Fatal("the other goroutine never ran")
					}
					runtime.Gosched()
				}
			}
			if tc.wantYield && yields == 0 || !tc.wantYield && yields > 0 {
				t.Errorf("busy %d: %d of %d writes yielded first, want yields: %v", tc.busy, yields, writes, tc.wantYield)
			}
			buf := make([]byte, writes*6)
			client.SetReadDeadline(time.Now().Add(ioTimeout))
			if _, err := io.ReadFull(client, buf); err != nil || buf[1] != 4 || buf[len(buf)-5] != 4 {
				t.Errorf("client read %v, %v; want %d framed answers", buf, err, writes)
			}
		})
	}
}
