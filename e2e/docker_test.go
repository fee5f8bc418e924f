package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	// imageVersion is stamped into the image's binary (VERSION).
	imageVersion = "e2e"
	// imageUser is the Dockerfile's USER, uid and gid.
	imageUser = "65532"
	// maxImageSize: a static binary (~13 MB, stripped) and a CA bundle on scratch.
	// Far above that, something of the builder got into the image.
	maxImageSize = 30 << 20
)

// dockerHardened are the docker run options the README recommends: nothing
// writable, no capability at all.
var dockerHardened = []string{"--read-only", "--cap-drop", "ALL"}

// dockerFastHealth runs the image's HEALTHCHECK every second instead of
// every 30 s.
var dockerFastHealth = []string{"--health-interval", "1s", "--health-start-period", "1s"}

// TestDockerImage builds the Dockerfile as CI can, offline, and runs the
// image as users do: on the built-in configuration in a network namespace
// of its own, and on a mounted configuration on the host's network,
// forwarding to Unbound over TLS, hardened, as the non-root user, with
// Docker's health check, and stopping cleanly.
func TestDockerImage(t *testing.T) {
	docker := needDocker(t)
	// The other tools, before the minute-long build.
	tool(t, "dig", "dnsutils")
	tool(t, "unbound", "unbound")

	image := docker.buildImage(t, imageVersion)
	size, err := strconv.ParseInt(docker.must(t, "image", "inspect", "--format", "{{.Size}}", image), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s: %.1f MB", image, float64(size)/(1<<20))
	if size > maxImageSize {
		t.Errorf("image size %d bytes, want at most %d", size, maxImageSize)
	}
	if user := docker.inspect(t, "{{.Config.User}}", image); user != imageUser+":"+imageUser {
		t.Errorf("image USER %q, want %s:%s", user, imageUser, imageUser)
	}

	t.Run("own network namespace", func(t *testing.T) { testDockerOwnNetwork(t, docker, image) })
	t.Run("host network", func(t *testing.T) { testDockerHostNetwork(t, docker, image) })
}

// testDockerOwnNetwork runs the image on its built-in configuration,
// /etc/dotproxy/config.yaml, with no network but its own loopback: the
// non-root user binds port 53, and the health check gets an answer (no
// upstream can be reached, so SERVFAIL: an answer all the same).
func testDockerOwnNetwork(t *testing.T, docker *dockerCLI, image string) {
	c := docker.startContainer(t, image, slices.Concat([]string{"--network", "none"}, dockerHardened))
	c.waitFor("serving port 53", func() error {
		if log := c.logs(); !strings.Contains(log, `msg="serving DNS" addr=0.0.0.0:53 transport=udp`) {
			return fmt.Errorf("no line 'serving DNS' for 0.0.0.0:53 in its log")
		}
		return nil
	})
	if log := c.logs(); !strings.Contains(log, "version="+imageVersion+" config=/etc/dotproxy/config.yaml") {
		t.Errorf("the log does not show version %s and the image's config file:\n%s", imageVersion, log)
	}
	c.checkUser()
	res := docker.run(t, dockerTimeout, "exec", c.name, "/dotproxy", "healthcheck")
	if want := "127.0.0.1:53 answered SERVFAIL"; res.code != 1 || !strings.Contains(res.stderr, want) {
		t.Errorf("healthcheck: status %d, output:\n%s%s\nwant status 1 and %q", res.code, res.stdout, res.stderr, want)
	}
	c.stop()
	if log := c.logs(); !strings.Contains(log, "msg=stopped") {
		t.Errorf("no graceful stop in the log:\n%s", log)
	}
}

// testDockerHostNetwork runs the image with --network host on a mounted
// configuration whose upstream is an Unbound on loopback, trusted through
// a mounted CA file.
func testDockerHostNetwork(t *testing.T, docker *dockerCLI, image string) {
	ub := startUnbound(t, newPKI(t), "127.0.0.2")
	dir := t.TempDir()
	// The container's user is not root: both files must be readable to it.
	caPEM, err := os.ReadFile(ub.pki.caFile)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	listen := dockerListenAddr(t)
	cfg := proxyConfig{upstreams: []upstreamConf{{name: "unbound", addr: ub.addr, caFile: "/ca.pem"}}}
	configFile := filepath.Join(dir, "config.yaml")
	for path, data := range map[string][]byte{caFile: caPEM, configFile: []byte(cfg.yaml(listen))} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mounts := []string{"--volume", configFile + ":/etc/dotproxy/config.yaml:ro", "--volume", caFile + ":/ca.pem:ro"}

	// -check finds the mounted file where the image looks for it.
	check := slices.Concat([]string{"run", "--rm", "--network", "none"}, dockerHardened, mounts, []string{image, "-check"})
	if out, want := docker.must(t, check...), "/etc/dotproxy/config.yaml: OK (1 upstreams, 1 listen addresses)"; out != want {
		t.Errorf("dotproxy -check printed %q, want %q", out, want)
	}

	opts := slices.Concat([]string{"--network", "host"}, dockerHardened, dockerFastHealth, mounts)
	c := docker.startContainer(t, image, opts)
	// Only addr is set: these methods need no more.
	d := &dotproxy{t: t, addr: listen}
	c.waitFor("answering on "+listen.String(), d.ready)

	for _, transport := range []string{"udp", "tcp"} {
		args := []string{"example.com", "A"}
		if transport == "tcp" {
			args = append(args, "+tcp")
		}
		a, out := d.dig(t, args...)
		if a.status != "NOERROR" || !slices.Equal(a.data("A"), []string{exampleIP}) {
			t.Errorf("dig over %s: status %s, A %q; want NOERROR, [%s]\n%s", transport, a.status, a.data("A"), exampleIP, out)
		}
	}

	c.waitHealth("healthy")
	if out := docker.must(t, "exec", c.name, "/dotproxy", "-version"); out != "dotproxy "+imageVersion {
		t.Errorf("dotproxy -version printed %q, want %q", out, "dotproxy "+imageVersion)
	}
	c.checkUser()
	checkDockerCaps(t, c.inspect("{{.State.Pid}}"))

	c.stop()
	checkDockerLog(t, dockerJSONLog(c.logs()))
}

// dockerJSONLog returns the JSON lines of a log.
func dockerJSONLog(out string) []logEntry {
	var entries []logEntry
	for line := range strings.Lines(out) {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil {
			entries = append(entries, e)
		}
	}
	return entries
}

// checkDockerLog checks the log of a proxy that ran in a container on the
// mounted configuration and was stopped: it found the file without
// -config, carried the queries to Unbound over TLS 1.3 through the
// mounted CA, and stopped gracefully.
func checkDockerLog(t *testing.T, log []logEntry) {
	t.Helper()
	has := func(msg string, kv ...string) bool {
		return slices.ContainsFunc(log, func(e logEntry) bool { return e.is(msg, kv...) })
	}
	if !has("starting dotproxy", "version", imageVersion, "config", "/etc/dotproxy/config.yaml") {
		t.Errorf("no log line 'starting dotproxy' with version %s and config /etc/dotproxy/config.yaml", imageVersion)
	}
	if !has("query sent", "upstream", "unbound", "qname", "example.com.", "tls", "TLS 1.3") {
		t.Errorf("no log line 'query sent' for example.com to unbound over TLS 1.3")
	}
	if !has("shutting down") || len(log) == 0 || !log[len(log)-1].is("stopped") {
		t.Errorf("the log does not end with a graceful stop ('shutting down', then 'stopped')")
	}
}

// dockerListenAddr returns the address for a proxy on the host's network
// run as the image's user with no capability: a free port of 127.0.0.1
// above 1023 (port 53 there needs root's NET_BIND_SERVICE; see README).
func dockerListenAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), freePort(t, "127.0.0.1", true))
}

// checkDockerCaps checks, where the container's processes are visible
// (the engine runs on this machine), that the proxy, pid, runs as the
// image's user with no capability at all: --cap-drop ALL took effect and
// nothing in the image adds one back.
func checkDockerCaps(t *testing.T, pid string) {
	t.Helper()
	// Another machine's engine has other pids: check the name first.
	comm, err := os.ReadFile(filepath.Join("/proc", pid, "comm"))
	if err != nil || string(comm) != "dotproxy\n" {
		t.Logf("capabilities not checked: pid %s is not dotproxy here (%q, %v)", pid, comm, err)
		return
	}
	status, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Uid":    strings.Repeat(imageUser+"\t", 3) + imageUser,
		"CapEff": fmt.Sprintf("%016x", 0),
		"CapPrm": fmt.Sprintf("%016x", 0),
		"CapBnd": fmt.Sprintf("%016x", 0),
	}
	for line := range strings.Lines(string(status)) {
		key, value, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ":\t")
		if w, ok := want[key]; ok && value != w {
			t.Errorf("/proc/%s/status: %s %q, want %q", pid, key, value, w)
		}
	}
}
