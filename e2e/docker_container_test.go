package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	// containerStopTimeout is docker stop's wait before SIGKILL: well over
	// dotproxy's own 5 s grace period, so that only a hung stop is killed.
	containerStopTimeout = 20 * time.Second
	// dockerHealthTimeout bounds the wait for a health status. The tests run
	// the HEALTHCHECK every second; healthy takes one good check.
	dockerHealthTimeout = 30 * time.Second
)

// container is a container of the image under test, started detached.
type dockerContainer struct {
	t      *testing.T
	docker *dockerCLI
	name   string
}

// startContainer runs image detached with the docker run options opts
// and the proxy's args, and removes the container when the test ends,
// showing its log if the test failed.
func (d *dockerCLI) startContainer(t *testing.T, image string, opts []string, args ...string) *dockerContainer {
	t.Helper()
	c := &dockerContainer{t: t, docker: d, name: dockerName("dotproxy-e2e")}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("container %s log:\n%s", c.name, c.logs())
		}
		if res := d.run(t, dockerTimeout, "rm", "--force", c.name); res.code != 0 {
			t.Errorf("removing container %s: %s", c.name, res.stderr)
		}
	})
	d.must(t, slices.Concat([]string{"run", "--detach", "--name", c.name}, opts, []string{image}, args)...)
	return c
}

// inspect returns a Go template's value for the container.
func (c *dockerContainer) inspect(format string) string {
	c.t.Helper()
	return c.docker.inspect(c.t, format, c.name)
}

// running reports whether the container is still running.
func (c *dockerContainer) running() bool {
	c.t.Helper()
	return c.inspect("{{.State.Running}}") == "true"
}

// logs returns everything the container has written, stdout and stderr.
func (c *dockerContainer) logs() string {
	c.t.Helper()
	res := c.docker.run(c.t, dockerTimeout, "logs", c.name)
	return res.stdout + res.stderr
}

// waitFor calls probe until it succeeds, failing the test if the
// container stops or readyTimeout passes first.
func (c *dockerContainer) waitFor(what string, probe func() error) {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := probe()
		if err == nil {
			return
		}
		if !c.running() {
			c.t.Fatalf("container %s exited (status %s) before %s", c.name, c.inspect("{{.State.ExitCode}}"), what)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("container %s: not %s after %v: %v", c.name, what, readyTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitHealth waits until Docker reports the health status want.
func (c *dockerContainer) waitHealth(want string) {
	c.t.Helper()
	deadline := time.Now().Add(dockerHealthTimeout)
	for {
		status := c.inspect("{{.State.Health.Status}}")
		if status == want {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("health status %q after %v, want %q; the checks:\n%s",
				status, dockerHealthTimeout, want, c.inspect("{{json .State.Health.Log}}"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkUser checks that every process of the container, the proxy and any
// health check running just then, runs as uid and gid 65532.
func (c *dockerContainer) checkUser() {
	c.t.Helper()
	// docker top needs the pid column to tell the container's processes.
	out := c.docker.must(c.t, "top", c.name, "-o", "pid,uid,gid,comm")
	lines := slices.Collect(strings.Lines(out))
	if len(lines) < 2 {
		c.t.Fatalf("docker top: no process:\n%s", out)
	}
	for _, line := range lines[1:] {
		if f := strings.Fields(line); len(f) != 4 || f[1] != imageUser || f[2] != imageUser {
			c.t.Errorf("process %q: want uid and gid %s", strings.TrimSpace(line), imageUser)
		}
	}
}

// stop stops the container as `docker stop` does, with SIGTERM, and
// checks that the proxy exited with status 0 by itself.
func (c *dockerContainer) stop() {
	c.t.Helper()
	start := time.Now()
	c.docker.must(c.t, "stop", "--time", fmt.Sprint(int(containerStopTimeout.Seconds())), c.name)
	if took := time.Since(start); took >= containerStopTimeout {
		c.t.Errorf("docker stop took %v: the proxy ignored SIGTERM and was killed", took.Round(time.Millisecond))
	}
	if code := c.inspect("{{.State.ExitCode}}"); code != "0" {
		c.t.Errorf("exit status %s after docker stop, want 0", code)
	}
}
