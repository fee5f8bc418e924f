package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// plainBuild is the binary built without -race, for measurements that
// the race detector would distort: it multiplies memory by 5-10 and CPU
// by 2-20.
var plainBuild struct {
	once sync.Once
	bin  string
	err  error
}

// plainBin returns a dotproxy binary built without -race: the one
// TestMain built when the tests run without -race, else one built once,
// next to it, in the directory TestMain removes at the end.
func plainBin(t *testing.T) string {
	t.Helper()
	short(t)
	if !raceEnabled {
		return dotproxyBin
	}
	plainBuild.once.Do(func() {
		bin := filepath.Join(filepath.Dir(dotproxyBin), "dotproxy-norace")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin,
			"-ldflags", "-X main.version="+builtVersion, "./cmd/dotproxy")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			plainBuild.err = fmt.Errorf("go build ./cmd/dotproxy (without -race): %v\n%s", err, out)
			return
		}
		plainBuild.bin = bin
	})
	if plainBuild.err != nil {
		t.Fatal(plainBuild.err)
	}
	return plainBuild.bin
}

// procStatus is what /proc/PID/status says of a process's footprint.
type procStatus struct {
	rssKB, peakKB int // VmRSS, VmHWM: resident memory now and at its peak
	threads       int
}

func (s procStatus) String() string {
	return fmt.Sprintf("RSS %.1f MB (peak %.1f MB), %d threads", mb(s.rssKB), mb(s.peakKB), s.threads)
}

func mb(kb int) float64 { return float64(kb) / 1024 }

// status reads p's /proc/PID/status; a process that has exited fails t.
func (p *process) status(t *testing.T) procStatus {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading the process's status: %v", err)
	}
	defer f.Close()
	var s procStatus
	fields := map[string]*int{"VmRSS": &s.rssKB, "VmHWM": &s.peakKB, "Threads": &s.threads}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, _ := strings.Cut(sc.Text(), ":")
		if dst, ok := fields[key]; ok {
			// "  12345 kB" or "  7"
			*dst, _ = strconv.Atoi(strings.Fields(val)[0])
			delete(fields, key)
		}
	}
	if len(fields) > 0 || p.exited() {
		t.Fatalf("process %d: no %v in its status (exited: %v)", p.cmd.Process.Pid, fields, p.exited())
	}
	return s
}

// schedTraceEnv makes the Go runtime print its scheduler state, every
// goroutine included, once a second to stderr: how a test counts the
// goroutines of a binary that has no endpoint to ask.
const schedTraceEnv = "GODEBUG=schedtrace=1000,scheddetail=1"

var (
	schedLineRE = regexp.MustCompile(`(?m)^SCHED \d+ms:`)
	// schedGRE is one goroutine of a scheddetail block, by its status
	// (runtime/runtime2.go: 6 is _Gdead, a G kept for reuse; 0x1000 is
	// the _Gscan bit).
	schedGRE = regexp.MustCompile(`(?m)^  G\d+: status=(\d+)\(`)
)

// goroutines waits, at most timeout, for the runtime to print a whole
// scheduler block under schedTraceEnv that began after the call, and
// counts the live goroutines in it.
func (p *process) goroutines(t *testing.T, timeout time.Duration) int {
	t.Helper()
	from := len(p.out.String())
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && !p.exited() {
		out := p.out.String()[from:]
		// A block is whole once the next one has begun.
		if starts := schedLineRE.FindAllStringIndex(out, 2); len(starts) == 2 {
			n := 0
			for _, m := range schedGRE.FindAllStringSubmatch(out[starts[0][0]:starts[1][0]], -1) {
				if st, _ := strconv.Atoi(m[1]); st&^0x1000 != 6 {
					n++
				}
			}
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no scheduler trace within %v; was it started with %s?", timeout, schedTraceEnv)
	return 0
}

// logWatch reads dotproxy's JSON log as it grows, parsing each line once:
// under load the log holds thousands of lines, too many to parse again
// on every poll as dotproxy.waitLog does.
type logWatch struct {
	d       *dotproxy
	off     int // bytes of output read so far
	entries []logEntry
}

func (w *logWatch) update() {
	out := w.d.proc.out.String()
	end := strings.LastIndexByte(out, '\n') + 1
	if end <= w.off {
		return
	}
	for line := range strings.Lines(out[w.off:end]) {
		var e logEntry
		if json.Unmarshal([]byte(line), &e) == nil {
			w.entries = append(w.entries, e)
		}
	}
	w.off = end
}

// wait waits, at most timeout, for a line from index from on that matches
// msg and kv, and returns its index.
func (w *logWatch) wait(t *testing.T, timeout time.Duration, from int, msg string, kv ...string) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w.update()
		for i := from; i < len(w.entries); i++ {
			if w.entries[i].is(msg, kv...) {
				return i
			}
		}
		if time.Now().After(deadline) || w.d.proc.exited() {
			t.Fatalf("no log line msg=%q %q within %v", msg, kv, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// count counts the lines from index from on that match msg and kv and
// whose qname ends in suffix.
func (w *logWatch) count(from int, suffix, msg string, kv ...string) int {
	w.update()
	n := 0
	for _, e := range w.entries[from:] {
		if e.is(msg, kv...) && strings.HasSuffix(e.get("qname"), suffix) {
			n++
		}
	}
	return n
}

// leafCert loads the upstream certificate of p, for an in-process DoT
// server that stands beside the Unbounds of the same test.
func (p *pki) leafCert(t *testing.T) tls.Certificate {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		t.Fatalf("loading the upstream certificate: %v", err)
	}
	return cert
}
