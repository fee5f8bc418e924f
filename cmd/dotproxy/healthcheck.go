package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/dotproxy/dotproxy/config"
)

// healthcheckTimeout bounds the whole check, well inside Docker's
// default HEALTHCHECK timeout of 30 s.
const healthcheckTimeout = 5 * time.Second

// healthcheck asks the running proxy, at the first address it listens
// on, the health probe's own question over UDP and, when the admin
// listener is on, its /readyz; it exits 0 when it gets a real answer
// (NOERROR or NXDOMAIN) and readiness: the listener works and an upstream
// is healthy. It needs no shell or curl, so a scratch image's HEALTHCHECK
// can run it.
func healthcheck(args []string) int {
	fs := flag.NewFlagSet("dotproxy healthcheck", flag.ContinueOnError)
	path := fs.String("config", "", "config file (as for the proxy itself)")
	if err := fs.Parse(args); err != nil {
		return exitConfig
	}
	cfg, _, err := config.Load(*path)
	if err == nil {
		err = config.ApplyEnv(cfg, os.Getenv)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "dotproxy healthcheck: config errors:\n%v\n", err)
		return exitConfig
	}
	addr := localAddr(cfg.Listen[0])
	q := new(dns.Msg)
	q.SetQuestion(cfg.Health.ProbeName, cfg.Health.ProbeType)
	q.SetEdns0(dns.DefaultMsgSize, false)
	c := &dns.Client{Net: "udp", Timeout: healthcheckTimeout}
	r, _, err := c.Exchange(q, addr.String())
	if err != nil {
		fmt.Fprintf(os.Stderr, "dotproxy healthcheck: %s: %v\n", addr, err)
		return exitFail
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		fmt.Fprintf(os.Stderr, "dotproxy healthcheck: %s answered %s\n", addr, dns.RcodeToString[r.Rcode])
		return exitFail
	}
	fmt.Printf("dotproxy healthcheck: %s answered %s\n", addr, dns.RcodeToString[r.Rcode])
	if !cfg.Admin.IsValid() {
		return exitOK
	}
	// The answer may have come from the cache; readiness says whether
	// an upstream is reachable now.
	url := "http://" + localAddr(cfg.Admin).String() + "/readyz"
	hc := &http.Client{Timeout: healthcheckTimeout}
	resp, err := hc.Get(url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dotproxy healthcheck: %v\n", err)
		return exitFail
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "dotproxy healthcheck: %s: %s %s\n", url, resp.Status, strings.TrimSpace(string(body)))
		return exitFail
	}
	fmt.Printf("dotproxy healthcheck: %s: %s\n", url, strings.TrimSpace(string(body)))
	return exitOK
}

// localAddr turns a listen address into one to send to from this host:
// a wildcard becomes the loopback address of its family.
func localAddr(a netip.AddrPort) netip.AddrPort {
	switch {
	case a.Addr() == netip.IPv4Unspecified():
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), a.Port())
	case a.Addr() == netip.IPv6Unspecified():
		return netip.AddrPortFrom(netip.IPv6Loopback(), a.Port())
	}
	return a
}
