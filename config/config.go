// Package config reads dotproxy's configuration: the YAML file (or the
// built-in default, the repository's config.yaml) and the environment
// variables kept from the original Python daemon. It decodes strictly,
// validates everything and reports every problem at once, each with its
// file, line and key. What it returns is typed (netip, time.Duration,
// slog.Level) and needs no further checking.
//
// It owns reading and validating. It does not build anything: no sockets,
// no TLS configurations, no loggers; the packages that do take their
// values from a *Config.
package config

import (
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/dotproxy/dotproxy"
)

// Config is the validated, typed configuration. Its zero value is not
// useful; start from Default, Parse or Load.
type Config struct {
	Listen               []netip.AddrPort // plain DNS, UDP and TCP on each
	Upstreams            []Upstream       // at least one
	Policy               string           // "fastest" | "round_robin" | "random" | "ordered"
	Timeout              time.Duration    // per upstream attempt
	QueryTimeout         time.Duration    // whole client query; always longer than Timeout
	HedgeDelay           time.Duration    // floor of the delay before racing the next upstream; may be 0
	Connections          Connections
	Health               Health
	Allow                []netip.Prefix // clients allowed to query; masked
	TCP                  TCP
	MaxInflight          int       // queries whose answers wait, UDP and TCP together
	MaxInflightPerClient int       // of those, what one client (IPv4 address, IPv6 /64) may hold
	MaxUDPSize           int       // the largest UDP answer sent, whatever the client advertises; TC beyond it
	RateLimit            RateLimit // response rate limiting of UDP answers
	Cache                Cache
	Filter               Filter
	LocalRecords         map[string][]netip.Addr // name (lower case, no trailing dot) → addresses
	Forward              []Forward               // per-domain forwarding rules, in file order
	Router               netip.AddrPort          // the house's router, asked for its LAN names; invalid (zero) when none
	Rebind               RebindProtection        // refusal of public answers pointing into the house
	HostsFiles           []string                // hosts-format and dnsmasq lease files answered as local records; absolute paths
	HostsDomain          string                  // appended to the files' single-label names; lower case, no trailing dot; "" for none
	Admin                netip.AddrPort          // the HTTP admin listener; invalid (zero) when off
	AdminHosts           []string                // Host header names it answers besides IP literals and localhost; lower case, no trailing dot
	Watch                bool                    // reload when the config file changes
	QueryLog             QueryLog
	Log                  Log
}

// Connections configures the connections dotproxy keeps to each upstream.
type Connections struct {
	MaxPerUpstream int           // persistent connections per upstream
	IdleTimeout    time.Duration // an unused connection is closed after this
	DialTimeout    time.Duration // TCP connect and TLS handshake
}

// Health configures the upstream prober.
type Health struct {
	Interval     time.Duration // probe period for a healthy upstream
	DownInterval time.Duration // probe period for an upstream marked down
	Timeout      time.Duration // per probe
	Fall         int           // consecutive failures before marking down
	Rise         int           // consecutive successes before marking up
	ProbeName    string        // fully qualified query name
	ProbeType    uint16        // query type, a dns.Type* value
}

// TCP configures the limits on clients' TCP connections.
type TCP struct {
	IdleTimeout        time.Duration // a connection with nothing to read is closed
	MaxConnections     int           // all clients together
	MaxPerClient       int           // from one client address
	MaxInflightPerConn int           // pipelined queries in flight on one connection
}

// Log configures logging.
type Log struct {
	Level  slog.Level
	Format string // "text" | "json"
}

// embeddedSource names the built-in default in error messages and in what
// Load returns.
const embeddedSource = "embedded default"

// embedded is the built-in default, parsed once. It is decoded onto a zero
// Config, so config.yaml is the single place where defaults are written;
// TestDefault pins its values.
var embedded = sync.OnceValues(func() (*Config, error) {
	c := new(Config)
	return c, decode(c, embeddedSource, dotproxy.DefaultConfig)
})

// Default returns a fresh copy of the built-in configuration, the
// repository's config.yaml. It panics only if that file is invalid, which
// the package's tests rule out.
func Default() *Config {
	c, err := embedded()
	if err != nil {
		panic("config: the embedded config.yaml is invalid:\n" + err.Error())
	}
	return c.clone()
}

// clone returns a deep copy of c, so that callers of Default may change
// what they get.
func (c *Config) clone() *Config {
	d := *c
	d.Listen = slices.Clone(c.Listen)
	d.Allow = slices.Clone(c.Allow)
	d.AdminHosts = slices.Clone(c.AdminHosts)
	d.RateLimit.Exempt = slices.Clone(c.RateLimit.Exempt)
	d.Upstreams = slices.Clone(c.Upstreams)
	for i, u := range d.Upstreams {
		d.Upstreams[i].Bootstrap = slices.Clone(u.Bootstrap)
		pins := make([][]byte, len(u.SPKIPins))
		for j, p := range u.SPKIPins {
			pins[j] = slices.Clone(p)
		}
		if u.SPKIPins == nil {
			pins = nil
		}
		d.Upstreams[i].SPKIPins = pins
	}
	d.Filter.Blocklists = slices.Clone(c.Filter.Blocklists)
	d.Filter.Allowlists = slices.Clone(c.Filter.Allowlists)
	d.Filter.Groups = slices.Clone(c.Filter.Groups)
	for i, g := range d.Filter.Groups {
		d.Filter.Groups[i].Clients = slices.Clone(g.Clients)
		d.Filter.Groups[i].Names = slices.Clone(g.Names)
		d.Filter.Groups[i].Blocklists = slices.Clone(g.Blocklists)
		d.Filter.Groups[i].Allowlists = slices.Clone(g.Allowlists)
	}
	d.Forward = slices.Clone(c.Forward)
	for i, f := range d.Forward {
		d.Forward[i].Domains = slices.Clone(f.Domains)
		d.Forward[i].Servers = slices.Clone(f.Servers)
		d.Forward[i].SPKIPins = slices.Clone(f.SPKIPins)
	}
	d.Rebind.Allow = slices.Clone(c.Rebind.Allow)
	d.HostsFiles = slices.Clone(c.HostsFiles)
	if c.LocalRecords != nil {
		d.LocalRecords = make(map[string][]netip.Addr, len(c.LocalRecords))
		for k, v := range c.LocalRecords {
			d.LocalRecords[k] = slices.Clone(v)
		}
	}
	return &d
}
