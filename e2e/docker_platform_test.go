package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerImageArm64 builds the image for linux/arm64 offline, as
// `docker buildx build --platform linux/amd64,linux/arm64,...` builds
// each of its images, and checks that it is an arm64 image whose binary
// runs: taken out of the image and run under qemu user emulation, since
// the engine here may have no binfmt handler to run arm64 containers.
func TestDockerImageArm64(t *testing.T) {
	docker := needDocker(t)
	qemu := tool(t, "qemu-aarch64-static", "qemu-user-static")

	image := docker.buildImageFor(t, imageVersion, "linux/arm64")
	if got := docker.inspect(t, "{{.Os}}/{{.Architecture}}", image); got != "linux/arm64" {
		t.Errorf("image platform %s, want linux/arm64", got)
	}

	// docker create makes a container without starting it, which an
	// arm64 image on an amd64 engine could not do without binfmt.
	name := dockerName("dotproxy-e2e-arm64")
	docker.must(t, "create", "--name", name, image)
	t.Cleanup(func() { docker.run(t, dockerTimeout, "rm", "--force", name) })
	bin := filepath.Join(t.TempDir(), "dotproxy")
	docker.must(t, "cp", name+":/dotproxy", bin)

	res := run(t, "", nil, qemu, bin, "-version")
	if out := strings.TrimSpace(res.stdout); res.code != 0 || out != "dotproxy "+imageVersion {
		t.Errorf("qemu-aarch64-static dotproxy -version: status %d, output %q%s, want 0 and %q",
			res.code, out, res.stderr, "dotproxy "+imageVersion)
	}
	// The image's own configuration, as the arm64 binary reads it.
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	docker.must(t, "cp", name+":/etc/dotproxy/config.yaml", cfg)
	if res := run(t, "", nil, qemu, bin, "-check", "-config", cfg); res.code != 0 {
		t.Errorf("dotproxy -check of the image's config.yaml under qemu: status %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}
