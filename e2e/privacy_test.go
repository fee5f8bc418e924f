package e2e

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/internal/dottest"
)

// privacyUpstream is the upstream's address in the privacy test, used by
// no other test, so that the capture holds only the traffic between
// dotproxy and that upstream.
const privacyUpstream = "127.0.0.77"

// privacyConfig makes failure quick: the test breaks the upstream to see
// that dotproxy falls back to nothing.
const privacyConfig = `timeout: 500ms
query_timeout: 1s
health: {interval: 200ms, down_interval: 200ms, timeout: 500ms, fall: 2, rise: 1}
`

// captureSnaplen holds the headers the test reads: Ethernet 14, IPv4 up
// to 60, TCP up to 60 bytes.
const captureSnaplen = 134

// captureBufferKB is tcpdump's ring buffer (-B), 8 times its default.
const captureBufferKB = 16 << 10

// captureStop bounds tcpdump's exit after SIGINT, its capture flushed.
const captureStop = 10 * time.Second

// TestPrivacyOnlyDoTOnTheWire captures loopback traffic to and from the
// upstream's address with tcpdump while queries of several types and
// sizes go through dotproxy over UDP and TCP, and while the upstream is
// silent and then gone (when a proxy with a plaintext fallback would use
// it). Every packet toward the upstream's address must go to its DoT
// port (none to port 53, UDP or TCP, nor any other), every query the
// upstream read must carry EDNS padding to a multiple of 128 bytes (RFC
// 8467), and none the client's own EDNS options (cookie, client subnet).
func TestPrivacyOnlyDoTOnTheWire(t *testing.T) {
	tcpdump := tool(t, "tcpdump", "tcpdump")
	p := newPKI(t)
	var leaks leakCounter
	up := dottest.Start(t, dottest.Options{
		Cert: p.leafCert(t), Addr: privacyUpstream + ":0", Handler: leaks.wrap(dottest.Answer("192.0.2.1")),
	})
	capture := startCapture(t, tcpdump, privacyUpstream)
	d := startDotproxy(t, proxyConfig{
		upstreams: []upstreamConf{{name: "private", addr: up.Addr(), caFile: p.caFile}},
		extra:     privacyConfig,
	})

	// Names of different lengths and types, so that unpadded queries
	// would differ in size; each phase asks them under a label of its
	// own, so that none is answered from the cache.
	questions := []struct {
		name  string
		qtype uint16
	}{
		{"example.com.", dns.TypeA},
		{"www.example.org.", dns.TypeAAAA},
		{"a-much-longer-name.with.several.labels.example.net.", dns.TypeA},
		{strings.Repeat("x", 60) + "." + strings.Repeat("y", 60) + ".example.", dns.TypeAAAA},
	}
	ask := func(phase string, wantRcode int) {
		t.Helper()
		for i, q := range questions {
			name := phase + "." + q.name
			// Half with the client's own EDNS options (a cookie, as dig
			// sends, and a client subnet), which must not leave the
			// house nor change the padding.
			m := new(dns.Msg).SetQuestion(name, q.qtype)
			if i%2 == 1 {
				m.SetEdns0(4096, true)
				opt := m.IsEdns0()
				opt.Option = append(opt.Option,
					&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
					&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24,
						Address: net.IPv4(192, 168, 1, 0)})
			}
			c := &dns.Client{Net: network(i), Timeout: clientTimeout}
			r, _, err := c.Exchange(m, d.addr.String())
			if err != nil {
				t.Fatalf("%s over %s: %v", name, network(i), err)
			}
			if r.Rcode != wantRcode {
				t.Fatalf("%s over %s: %s, want %s", name, network(i),
					dns.RcodeToString[r.Rcode], dns.RcodeToString[wantRcode])
			}
		}
	}
	ask("up", dns.RcodeSuccess)
	// Silent: queries time out on a connection that stays open.
	up.SetHandler(leaks.wrap(dottest.Silent()))
	ask("silent", dns.RcodeServerFailure)
	// Gone: every dial is refused.
	up.Kill()
	ask("gone", dns.RcodeServerFailure)
	up.SetHandler(leaks.wrap(dottest.Answer("192.0.2.1")))
	up.Restart()
	// Back: wait for the upstream to answer again, through a probe or a
	// fresh dial.
	deadline := time.Now().Add(healthWait)
	for i := 0; ; i++ {
		r, err := d.query("udp", fmt.Sprintf("back%d.example.com.", i), dns.TypeA)
		if err == nil && r.Rcode == dns.RcodeSuccess {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the upstream did not answer again within %v of its restart (last: %v, %v)", healthWait, r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ask("back", dns.RcodeSuccess)

	packets := capture.stop(t)
	dot, other := splitPackets(t, packets, privacyUpstream, up.Addr().Port())
	t.Logf("capture: %d packets to or from %s, %d on its DoT port %d", len(packets), privacyUpstream, dot, up.Addr().Port())
	if dot == 0 {
		t.Errorf("no packet to or from the DoT port %v: did the capture see the traffic?\n%s", up.Addr(), strings.Join(packets, "\n"))
	}
	if len(other) > 0 {
		t.Errorf("%d packets to or from %s not on its DoT port %d:\n%s",
			len(other), privacyUpstream, up.Addr().Port(), strings.Join(other, "\n"))
	}

	if n, first := leaks.count(); n > 0 {
		t.Errorf("%d queries reached the upstream with EDNS options other than padding, the first:\n%s", n, first)
	}
	queries, padded := up.Queries(), up.Padded()
	t.Logf("upstream read %d queries, %d padded to a multiple of 128 bytes", queries, padded)
	if queries == 0 || padded != queries {
		t.Errorf("upstream read %d queries of which %d padded to a multiple of 128 bytes; want all padded", queries, padded)
	}
}

// leakCounter counts the queries an upstream reads with an EDNS option
// other than padding: a client's cookie or subnet, which dotproxy must
// not pass on.
type leakCounter struct {
	mu    sync.Mutex
	n     int
	first string // the first such query
}

// wrap returns h, counting leaks on the way.
func (l *leakCounter) wrap(h dottest.Handler) dottest.Handler {
	return func(q *dns.Msg, reply func(*dns.Msg)) {
		if opt := q.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if o.Option() != dns.EDNS0PADDING {
					l.mu.Lock()
					if l.n++; l.n == 1 {
						l.first = q.String()
					}
					l.mu.Unlock()
					break
				}
			}
		}
		h(q, reply)
	}
}

// count returns how many queries leaked and the first of them.
func (l *leakCounter) count() (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.first
}

// droppedRE is tcpdump's count, as it exits, of the packets it missed.
var droppedRE = regexp.MustCompile(`(?m)^(\d+) packets? dropped by kernel`)

// capture is tcpdump writing the packets of one host on loopback to a
// file.
type capture struct {
	bin, file string
	proc      *process
}

// startCapture starts tcpdump on lo for packets to or from host and waits
// until it captures. It is killed when the test ends, if not stopped
// before.
func startCapture(t *testing.T, bin, host string) *capture {
	t.Helper()
	c := &capture{bin: bin, file: filepath.Join(t.TempDir(), "lo.pcap")}
	// -U and --immediate-mode: every packet reaches the file as it is
	// seen, none is left in a buffer when tcpdump stops. Immediate mode
	// retires a ring block per packet or so, and a block holds one
	// packet of snaplen: a small snaplen (headers are all the test reads)
	// and a large buffer give many blocks, so that tcpdump, starved of
	// CPU on a busy machine, does not drop packets. -Z root: keep the
	// rights to write in the test's directory.
	c.proc = startProcess(t, nil, "", bin, "-i", "lo", "-n", "-U", "--immediate-mode",
		"-s", fmt.Sprint(captureSnaplen), "-B", fmt.Sprint(captureBufferKB), "-Z", "root",
		"-w", c.file, "host "+host)
	t.Cleanup(func() {
		c.proc.signal(syscall.SIGKILL)
		c.proc.wait()
	})
	err := waitReady(c.proc, func() error {
		if strings.Contains(c.proc.out.String(), "listening on lo") {
			return nil
		}
		return errors.New("tcpdump is not capturing yet")
	})
	if err != nil {
		t.Fatalf("starting tcpdump: %v\n%s", err, c.proc.out)
	}
	return c
}

// stop ends the capture and returns the packets it holds, one line each
// as `tcpdump -nn -r` prints them.
func (c *capture) stop(t *testing.T) []string {
	t.Helper()
	c.proc.signal(syscall.SIGINT)
	if _, ok := c.proc.waitFor(captureStop); !ok {
		t.Fatalf("tcpdump did not stop within %v of SIGINT:\n%s", captureStop, c.proc.out)
	}
	t.Logf("tcpdump: %s", strings.Join(strings.Fields(lastLines(c.proc.out.String(), 3)), " "))
	if m := droppedRE.FindStringSubmatch(c.proc.out.String()); m == nil || m[1] != "0" {
		t.Errorf("tcpdump dropped packets, or did not say: the capture may be incomplete:\n%s", c.proc.out)
	}
	// -nn: ports as numbers (-n alone prints 53 as "domain").
	res := run(t, "", nil, c.bin, "-nn", "-r", c.file)
	if res.code != 0 {
		t.Fatalf("tcpdump -r: status %d\n%s", res.code, res.stderr)
	}
	var packets []string
	for line := range strings.Lines(res.stdout) {
		if line = strings.TrimSpace(line); line != "" {
			packets = append(packets, line)
		}
	}
	return packets
}

// splitPackets counts the packets whose host end is port on host, and
// returns every other one: to or from another port of host, or with no
// port at all (ICMP, say). A line it cannot read fails t.
func splitPackets(t *testing.T, packets []string, host string, port uint16) (onPort int, other []string) {
	t.Helper()
	for _, line := range packets {
		// 05:40:01.123456 IP 127.0.0.1.41234 > 127.0.0.77.38211: Flags [S], ...
		f := strings.Fields(line)
		if len(f) < 5 || f[1] != "IP" || f[3] != ">" {
			t.Fatalf("capture: cannot read packet line %q", line)
		}
		src, errSrc := splitEndpoint(f[2])
		dst, errDst := splitEndpoint(strings.TrimSuffix(f[4], ":"))
		if errSrc != nil || errDst != nil {
			t.Fatalf("capture: cannot read packet line %q: %v", line, errors.Join(errSrc, errDst))
		}
		end := dst
		if src.host == host {
			end = src
		}
		if end.host == host && end.port == int(port) {
			onPort++
		} else {
			other = append(other, line)
		}
	}
	return onPort, other
}

// endpoint is an address as tcpdump -nn prints it: 127.0.0.1.53, or
// 127.0.0.1 alone for a packet without ports.
type endpoint struct {
	host string
	port int // -1: none
}

func splitEndpoint(s string) (endpoint, error) {
	parts := strings.Split(s, ".")
	switch len(parts) {
	case 4:
		return endpoint{s, -1}, nil
	case 5:
		port, err := strconv.Atoi(parts[4])
		if err != nil {
			return endpoint{}, fmt.Errorf("port of %q: %v", s, err)
		}
		return endpoint{strings.Join(parts[:4], "."), port}, nil
	}
	return endpoint{}, fmt.Errorf("%q is no IPv4 address with or without a port", s)
}
