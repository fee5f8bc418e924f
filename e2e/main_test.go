// Package e2e tests the dotproxy binary end to end against software
// nobody here wrote: Unbound as the DNS-over-TLS and DNS-over-HTTPS
// upstream, dnsdist as a second DNS-over-HTTPS one, dig, kdig and mdig as
// clients. Every process listens on loopback only and is started
// and stopped by the test that needs it.
//
// A missing tool skips the tests that need it, except under CI=true,
// where it fails them with the Debian package to install.
//
// It owns nothing the product uses; it only builds and runs cmd/dotproxy.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// builtVersion is stamped into the binary under test, so that -version
// can be checked for it.
const builtVersion = "e2e-test"

// Timeouts for the external commands. They are generous bounds against a
// hung process on a busy machine, not expectations of speed.
const (
	buildTimeout = 5 * time.Minute
	toolTimeout  = 30 * time.Second // one dig, kdig, mdig or dotproxy -check
	// daemonLifetime bounds how long Unbound or dotproxy may run at all,
	// should a test's cleanup never come.
	daemonLifetime = 5 * time.Minute
)

// dotproxyBin is the binary TestMain built; empty in -short mode.
var dotproxyBin string

// raceEnabled is set by race_test.go when the tests run with -race; the
// binary is then built with -race too, so a data race in it fails the
// test that stops it.
var raceEnabled bool

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "dotproxy-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := 1
	if dotproxyBin, err = build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles cmd/dotproxy from the module root, the parent of this
// package's directory, into dir.
func build(dir string) (string, error) {
	bin := filepath.Join(dir, "dotproxy")
	// The dotproxy_testclock tag adds the test seam that lets a test set
	// the clock certificates are judged by (cmd/dotproxy/testclock.go).
	args := []string{"build", "-o", bin, "-tags", "dotproxy_testclock", "-ldflags", "-X main.version=" + builtVersion}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/dotproxy")...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/dotproxy: %v\n%s", err, out)
	}
	return bin, nil
}

// short skips t in -short mode: these tests start processes and take
// seconds.
func short(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test; skipped in -short mode")
	}
}

// tool finds an external program and returns its path. A missing one
// skips t, or fails it when CI=true, where every tool must be installed.
func tool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	short(t)
	path, err := exec.LookPath(name)
	if err != nil {
		// Daemons live in sbin, which a non-root PATH may lack.
		if p := filepath.Join("/usr/sbin", name); fileExists(p) {
			return p
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (CI=true, so this fails): apt-get install %s", name, debianPackage)
		}
		t.Skipf("%s not found: apt-get install %s to run this test", name, debianPackage)
	}
	return path
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// result is what a finished command printed and how it exited.
type result struct {
	stdout, stderr string
	code           int // exit status; -1 if it did not exit normally
}

// run runs a command to completion within toolTimeout, in dir if not
// empty. Failing to start it, or its timing out, fails t.
func run(t *testing.T, dir string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q: no result within %v\nstdout:\n%s\nstderr:\n%s", name, args, toolTimeout, &stdout, &stderr)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running %s: %v", name, err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// logBuffer collects a process's output while it runs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
