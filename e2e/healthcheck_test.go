package e2e

import (
	"strings"
	"syscall"
	"testing"
)

// TestHealthcheck: `dotproxy healthcheck` (the Docker HEALTHCHECK, no
// shell needed) exits 0 while the proxy answers through an upstream, 1
// when no upstream answers and 1 when the proxy is gone.
func TestHealthcheck(t *testing.T) {
	d, ub := oneUnbound(t)
	check := func(want int, wantOut string) {
		t.Helper()
		res := run(t, "", baseEnv(), dotproxyBin, "healthcheck", "-config", d.config)
		if res.code != want || !strings.Contains(res.stdout+res.stderr, wantOut) {
			t.Fatalf("healthcheck: status %d, output:\n%s%s\nwant status %d and %q", res.code, res.stdout, res.stderr, want, wantOut)
		}
	}
	check(0, "answered NOERROR")

	ub.signal(syscall.SIGSTOP)
	check(1, "answered SERVFAIL")
	ub.signal(syscall.SIGCONT)
	check(0, "answered NOERROR")

	d.stop()
	check(1, "connection refused")
}
