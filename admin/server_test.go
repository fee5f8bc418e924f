package admin

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestNewChecksOptions(t *testing.T) {
	status := func() Status { return Status{} }
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no address", Options{Status: status}, "Options.Addr is required"},
		{"no status func", Options{Addr: netip.MustParseAddrPort("127.0.0.1:0")}, "Options.Status is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestStartNamesAddress takes a port and checks that Start's error says
// which address it could not bind.
func TestStartNamesAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().(*net.TCPAddr).AddrPort()

	s, err := New(Options{Addr: addr, Status: func() Status { return Status{} }})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start()
	if err == nil {
		s.Shutdown(context.Background())
		t.Fatalf("Start on a taken port succeeded")
	}
	if !strings.Contains(err.Error(), addr.String()) {
		t.Errorf("Start error %q does not name %s", err, addr)
	}
}

// TestLifecycle: Addr before and after Start, a second Start refused,
// Shutdown stops serving and may be repeated.
func TestLifecycle(t *testing.T) {
	want := netip.MustParseAddrPort("127.0.0.1:0")
	s, err := New(Options{Addr: want, Status: func() Status { return Status{} }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown before Start = %v, want nil", err)
	}

	s, _ = New(Options{Addr: want, Status: func() Status { return Status{} }})
	if got := s.Addr(); got != want {
		t.Errorf("Addr before Start = %v, want %v", got, want)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if addr.Addr() != want.Addr() || addr.Port() == 0 {
		t.Errorf("Addr after Start = %v, want 127.0.0.1 with a port", addr)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	resp, body := fetch(t, "GET", "http://"+addr.String()+"/healthz")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz = %d %q", resp.StatusCode, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get("http://" + addr.String() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("GET after Shutdown answered %d, want a connection error", resp.StatusCode)
	}
}

// TestShutdownCutsSlowRequest checks that Shutdown returns once its
// context ends even with a request still running.
func TestShutdownCutsSlowRequest(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	metrics := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(entered)
		<-release
	})
	s, err := New(Options{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Status: func() Status { return Status{} }, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		if resp, err := http.Get("http://" + s.Addr().String() + "/metrics"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Errorf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v with a stuck request", d)
	}
}
