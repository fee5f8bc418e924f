package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// process is a long-running program under test, its stdout and stderr
// collected together.
type process struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	out    *logBuffer
	done   chan struct{} // closed when it has exited and its output is read
	err    error         // Wait's result, set before done is closed
}

// startProcess starts bin. It is killed at the latest after
// daemonLifetime; tests stop it sooner in their cleanup.
func startProcess(t *testing.T, env []string, dir, bin string, args ...string) *process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), daemonLifetime)
	p := &process{
		cmd:    exec.CommandContext(ctx, bin, args...),
		cancel: cancel,
		out:    new(logBuffer),
		done:   make(chan struct{}),
	}
	p.cmd.Env, p.cmd.Dir = env, dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		cancel()
		close(p.done)
	}()
	return p
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig unless the process has ended.
func (p *process) signal(sig syscall.Signal) {
	if !p.exited() {
		p.cmd.Process.Signal(sig)
	}
}

// waitFor waits for the process to end, killing it after d, and returns its
// exit status (-1 when a signal ended it) and whether it ended by itself.
func (p *process) waitFor(d time.Duration) (code int, ok bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		ok = true
	case <-t.C:
		p.cancel()
		<-p.done
	}
	return p.cmd.ProcessState.ExitCode(), ok
}

// wait waits for a process that was sent SIGKILL.
func (p *process) wait() { p.waitFor(daemonLifetime) }

// waitReady calls probe until it succeeds, the process exits or
// readyTimeout passes.
func waitReady(p *process, probe func() error) error {
	deadline := time.Now().Add(readyTimeout)
	var err error
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("exited before it was ready: %v", p.err)
		}
		if err = probe(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.signal(syscall.SIGKILL)
	p.wait()
	return fmt.Errorf("not ready after %v: %w", readyTimeout, err)
}
