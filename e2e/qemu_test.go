package e2e

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dotproxy/dotproxy/internal/dottest"
	"github.com/miekg/dns"
)

// crossTargets are the router CPUs whose binaries must run, not just
// build: each is built as packaging/release builds it and run under
// Debian's qemu user emulation (qemu-user-static), emulating a CPU
// routers have rather than qemu's default, which has every feature.
// The MIPS 24Kc has no FPU: a hard-float build dies of SIGILL on it
// (under qemu; a router's kernel may emulate the FPU, slowly, or not),
// so this checks that the soft-float build is one.
var crossTargets = []struct {
	name string
	env  []string // GOARCH and its variant
	qemu string
	cpu  string // qemu's -cpu
}{
	{"arm64", []string{"GOARCH=arm64"}, "qemu-aarch64-static", "cortex-a53"},
	{"armv7", []string{"GOARCH=arm", "GOARM=7"}, "qemu-arm-static", "cortex-a7"},
	{"mipsle", []string{"GOARCH=mipsle", "GOMIPS=softfloat"}, "qemu-mipsel-static", "24Kc"},
}

// TestCrossBinariesUnderQemu starts each cross-built dotproxy under qemu
// against the in-process DoT server and checks a real answer over UDP
// and over TCP.
func TestCrossBinariesUnderQemu(t *testing.T) {
	short(t)
	p := newPKI(t)
	up := dottest.Start(t, dottest.Options{Cert: p.leafCert(t), Handler: dottest.Answer("192.0.2.14")})
	dir := t.TempDir()
	for _, target := range crossTargets {
		t.Run(target.name, func(t *testing.T) {
			qemu := tool(t, target.qemu, "qemu-user-static")
			bin := crossBuild(t, dir, target.name, target.env)
			d := launchBin(t, qemu, func(listen netip.AddrPort) ([]string, []string) {
				path := filepath.Join(t.TempDir(), "config.yaml")
				cfg := proxyConfig{upstreams: []upstreamConf{{name: "up", addr: up.Addr(), caFile: p.caFile}}, logLevel: "info"}
				if err := os.WriteFile(path, []byte(cfg.yaml(listen)), 0o600); err != nil {
					t.Fatal(err)
				}
				return []string{"-cpu", target.cpu, bin, "-config", path}, baseEnv()
			})
			for _, network := range []string{"udp", "tcp"} {
				name := network + "." + target.name + ".example."
				r, err := d.query(network, name, dns.TypeA)
				if err != nil {
					t.Fatal(err)
				}
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					t.Fatalf("%s over %s: %s with %d answers, want NOERROR with one", name, network, dns.RcodeToString[r.Rcode], len(r.Answer))
				}
				if a, ok := r.Answer[0].(*dns.A); !ok || a.A.String() != "192.0.2.14" {
					t.Errorf("%s over %s: answer %v, want A 192.0.2.14", name, network, r.Answer[0])
				}
			}
		})
	}
}

// crossBuild builds a static, stripped linux binary of cmd/dotproxy for
// env's GOARCH into dir.
func crossBuild(t *testing.T, dir, name string, env []string) string {
	t.Helper()
	bin := filepath.Join(dir, "dotproxy-"+name)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin,
		"-ldflags", "-s -w -X main.version="+builtVersion, "./cmd/dotproxy")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), append([]string{"CGO_ENABLED=0", "GOOS=linux"}, env...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build for %s: %v\n%s", name, err, out)
	}
	return bin
}
