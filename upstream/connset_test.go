package upstream

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeConn is a connection for connSet's own tests.
type fakeConn struct{}

func (fakeConn) alive() bool     { return true }
func (fakeConn) inFlight() int32 { return 0 }

// TestConnSetWaitSaysNoConnection: a query that gives up while the dial
// it waits on has not finished says it had no connection yet, with the
// last dial's failure when there was one, and is still its context's
// error.
func TestConnSetWaitSaysNoConnection(t *testing.T) {
	s := &connSet[fakeConn]{max: 2, dialTimeout: 100 * time.Millisecond,
		handshake: func(ctx context.Context) (fakeConn, error) {
			<-ctx.Done() // a handshake that never completes
			return fakeConn{}, errors.New("TLS handshake: " + ctx.Err().Error())
		}}
	tests := []struct {
		name string
		want string
	}{
		{name: "first dial under way", want: "no connection yet: context deadline exceeded"},
		{name: "after a failed dial", want: "no connection yet (the last dial: TLS handshake: context deadline exceeded): context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			_, _, err := s.get(ctx)
			if err == nil || err.Error() != tt.want || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("get: %v, want %q wrapping the deadline", err, tt.want)
			}
			// Let the dial end, so that the next case sees its failure.
			deadline := time.Now().Add(5 * time.Second)
			for {
				s.mu.Lock()
				done := s.dialing == nil && s.dialErr != nil
				s.mu.Unlock()
				if done {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the dial did not end")
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
