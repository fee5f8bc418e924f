package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// TestHealthcheck: `dotproxy healthcheck` (the Docker HEALTHCHECK, no
// shell needed) exits 0 while the proxy answers through an upstream, 1
// when no upstream answers and 1 when the proxy is gone.
func TestHealthcheck(t *testing.T) {
	d, ub := oneUnbound(t)
	check := func(want int, wantOut string) { t.Helper(); d.healthcheck(t, want, wantOut) }
	check(0, "answered NOERROR")

	ub.signal(syscall.SIGSTOP)
	check(1, "answered SERVFAIL")
	ub.signal(syscall.SIGCONT)
	check(0, "answered NOERROR")

	d.stop()
	check(1, "connection refused")
}

// TestHealthcheckReadiness: with the admin listener on, the healthcheck
// also asks /readyz, so a proxy answering from its cache while no
// upstream is reachable is reported unhealthy.
func TestHealthcheckReadiness(t *testing.T) {
	ub := startUnbound(t, newPKI(t), "127.0.0.2")
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1", false))
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{ub.upstream("unbound")},
		cache:     true,
		extra: "admin: \"" + admin + "\"\n" +
			"health: {interval: 200ms, down_interval: 200ms, timeout: 500ms, fall: 2, rise: 1}\n",
	})
	check := func(want int, wantOut string) { t.Helper(); d.healthcheck(t, want, wantOut) }
	check(0, "/readyz: ready")

	ub.signal(syscall.SIGSTOP)
	t.Cleanup(func() { ub.signal(syscall.SIGCONT) })
	d.waitLog(healthWait, 0, "upstream down", "upstream", "unbound")
	check(1, "503 Service Unavailable not ready: no upstream is healthy")
}

// healthcheck runs `dotproxy healthcheck` on d's config file and fails t
// unless it exits with want and its output holds wantOut.
func (d *dotproxy) healthcheck(t *testing.T, want int, wantOut string) {
	t.Helper()
	res := run(t, "", baseEnv(), dotproxyBin, "healthcheck", "-config", d.config)
	if res.code != want || !strings.Contains(res.stdout+res.stderr, wantOut) {
		t.Fatalf("healthcheck: status %d, output:\n%s%s\nwant status %d and %q", res.code, res.stdout, res.stderr, want, wantOut)
	}
}
