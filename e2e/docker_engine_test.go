package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// What the image test needs of the machine; .ci/docker-setup provides it.
const (
	// debianDocker is Debian's docker CLI, with BuildKit built in. A newer
	// CLI earlier in PATH may lack the buildx plugin BuildKit needs there.
	debianDocker = "/usr/bin/docker"
	// builderImage is the Dockerfile's GO_IMAGE for offline builds: bookworm
	// with this machine's Go, made by .ci/docker-setup.
	builderImage = "dotproxy-builder:bookworm"
)

// Bounds on the docker commands, against a hung engine on a busy machine.
const (
	engineTimeout     = 20 * time.Second // docker version, to see whether the engine answers
	dockerTimeout     = time.Minute      // one docker command but build
	imageBuildTimeout = 6 * time.Minute  // compiling the proxy and std from scratch: ~1-2 min
	vendorTimeout     = 3 * time.Minute  // go mod vendor, from the module cache
)

// dockerCLI runs docker commands.
type dockerCLI struct {
	bin string
}

// needDocker returns the docker CLI once the engine answers and the
// builder image is there. Otherwise it skips t, or fails it when CI=true,
// where .ci/docker-setup has made both.
func needDocker(t *testing.T) *dockerCLI {
	t.Helper()
	short(t)
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + " (bash .ci/docker-setup makes it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true, so this fails")
		}
		t.Skip(msg)
	}
	bin := debianDocker
	if !fileExists(bin) {
		var err error
		if bin, err = exec.LookPath("docker"); err != nil {
			missing("no docker CLI: apt-get install docker.io")
		}
	}
	// A hung engine does not answer either: not d.run, which would fail t.
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	version := exec.CommandContext(ctx, bin, "version")
	var stderr bytes.Buffer
	version.Stderr = &stderr
	if err := version.Run(); err != nil {
		missing("the docker engine does not answer (docker version: %v): %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	d := &dockerCLI{bin: bin}
	if res := d.run(t, dockerTimeout, "image", "inspect", "--format", "{{.Id}}", builderImage); res.code != 0 {
		missing("no builder image %s", builderImage)
	}
	return d
}

// run runs docker with args and returns what it printed and its status.
// Not finishing within timeout fails the test.
func (d *dockerCLI) run(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, args...)
	// BuildKit: the Debian CLI's built-in builder. It is faster than the
	// legacy one (about 70 s against 110 s here); the Dockerfile works
	// with both.
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("docker %s: no result within %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), timeout, &stdout, &stderr)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running %s: %v", d.bin, err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// must runs docker with args within dockerTimeout, fails the test unless
// it exits 0, and returns its standard output without the final newline.
func (d *dockerCLI) must(t *testing.T, args ...string) string {
	t.Helper()
	res := d.run(t, dockerTimeout, args...)
	if res.code != 0 {
		t.Fatalf("docker %s: status %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return strings.TrimSuffix(res.stdout, "\n")
}

// inspect returns a Go template's value for a container or image.
func (d *dockerCLI) inspect(t *testing.T, format, object string) string {
	t.Helper()
	return d.must(t, "inspect", "--format", format, object)
}

// dockerName returns prefix with a random suffix, for images and
// containers that must not collide with those of a concurrent run.
func dockerName(prefix string) string {
	// Docker wants lower case; rand.Text is upper-case base32.
	return prefix + "-" + strings.ToLower(rand.Text()[:10])
}

// buildImage builds the repository's Dockerfile as CI does, offline: from
// a copy of the module with its modules vendored, with --network none and
// the local builder image. It returns the image's tag and removes the
// image when the test ends.
func (d *dockerCLI) buildImage(t *testing.T, version string) string {
	t.Helper()
	return d.buildImageFor(t, version, "")
}

// buildImageFor is buildImage for another platform (linux/arm64): the
// Dockerfile cross-compiles, so no emulator runs during the build.
// platform "" is the engine's own.
func (d *dockerCLI) buildImageFor(t *testing.T, version, platform string) string {
	t.Helper()
	dir := dockerBuildContext(t)
	tag := "dotproxy:" + dockerName("e2e")
	t.Cleanup(func() {
		if res := d.run(t, dockerTimeout, "image", "rm", "--force", tag); res.code != 0 && !strings.Contains(res.stderr, "No such image") {
			t.Errorf("removing image %s: %s", tag, res.stderr)
		}
	})
	start := time.Now()
	args := []string{"build", "--progress", "plain", "--network", "none",
		"--build-arg", "GO_IMAGE=" + builderImage, "--build-arg", "VERSION=" + version, "--tag", tag}
	if platform != "" {
		args = append(args, "--platform", platform)
	}
	res := d.run(t, imageBuildTimeout, append(args, dir)...)
	if res.code != 0 {
		t.Fatalf("docker build: status %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	t.Logf("docker build of %s: %v", tag, time.Since(start).Round(time.Second))
	return tag
}

// dockerBuildContext copies the module into a temporary directory, as docker
// build would see the work tree (the files git tracks, and new ones it
// does not ignore), and vendors the modules there, so that the build
// needs no network and the work tree gets no vendor/.
func dockerBuildContext(t *testing.T) string {
	t.Helper()
	git := tool(t, "git", "git")
	res := run(t, "..", nil, git, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	if res.code != 0 {
		t.Fatalf("git ls-files: status %d\n%s", res.code, res.stderr)
	}
	dir := t.TempDir()
	for name := range strings.SplitSeq(strings.TrimSuffix(res.stdout, "\x00"), "\x00") {
		if err := copyContextFile(filepath.Join("..", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), vendorTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "vendor")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod vendor: %v\n%s", err, out)
	}
	return dir
}

// copyContextFile copies a regular file with its permission bits, creating the
// directories it needs. A file that is gone (deleted but still tracked)
// and anything but a regular file (a symlink) is skipped.
func copyContextFile(src, dst string) error {
	st, err := os.Lstat(src)
	if errors.Is(err, os.ErrNotExist) || err == nil && !st.Mode().IsRegular() {
		return nil
	}
	if err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}
