// Package filter is dotproxy's DNS firewall, a resolver.Middleware that
// sits in front of the cache and the upstream selector.
//
// It owns: blocklists and allowlists (hosts files, domain lists and the
// adblock subset DNS lists use) read from files and HTTP(S) URLs, parsed
// into immutable tables that are swapped whole when a list is refreshed
// in the background, with the last good copy of each downloaded list
// kept on disk; the block answers (with Extended DNS Error 15); CNAME
// cloaking; per-client groups of lists; and the local names it answers
// itself and never sends upstream: local records and the names of hosts
// and lease files (read again when they change), with their PTRs, and the
// locally served zones (home.arpa, local, private reverse zones) unless a
// forward rule sends them to the house's servers.
//
// It does not read the configuration (config fills Options), learn the
// client's address (the listener puts it in the query's
// resolver.Request), cache answers, or export metrics (Stats has the
// counters for that; what it did to a query goes in the request's
// resolver.Info).
package filter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dotproxy/dotproxy/hosts"
)

const (
	// DefaultRefresh is the default Options.Refresh: list publishers
	// update daily at most.
	DefaultRefresh = 24 * time.Hour
	// DefaultCacheDir is where the configuration keeps the lists' last
	// good copies unless told otherwise. Options.CacheDir does not
	// default to it: an empty CacheDir keeps no copies (tests).
	DefaultCacheDir = "/var/lib/dotproxy/lists"

	// downloadTimeout bounds one list download: 60 MB over a 2 Mbit/s
	// line takes 4 minutes.
	downloadTimeout = 5 * time.Minute
	// headerTimeout bounds the wait for a list server to start answering.
	headerTimeout = 30 * time.Second
)

// Options configures a Filter. Zero values mean the defaults.
type Options struct {
	// Blocklists are the lists whose names are blocked, each a file
	// path or an http(s) URL. Exceptions (@@||name^) in them allow.
	Blocklists []string
	// Allowlists are lists whose every name is allowed, whatever any
	// blocklist says. Same formats.
	Allowlists []string
	// BlockResponse is what a blocked query gets: BlockNXDomain (the
	// default), BlockNoData, BlockRefused or BlockNullIP.
	BlockResponse string
	// Refresh is how often every list is loaded again; DefaultRefresh
	// when zero. A list that failed is retried sooner (every 10 minutes).
	Refresh time.Duration
	// CacheDir is the directory for the last good copy of each list
	// downloaded from a URL, read at start so that filtering works
	// without network. Empty keeps no copies; the configuration's
	// default is DefaultCacheDir. It is created if missing.
	CacheDir string
	// LocalRecords are names answered here, authoritatively, with these
	// addresses, and PTR records for the addresses.
	LocalRecords map[string][]netip.Addr
	// Forwarded are domains (lower case, no trailing dot) a forwarding
	// rule sends to servers of the house: names at or under them in a
	// locally served zone (168.192.in-addr.arpa, home.arpa) go on to
	// next instead of getting NXDOMAIN here. Local records still answer.
	Forwarded []string
	// HostsFiles are /etc/hosts-format and dnsmasq lease files whose
	// names are answered as local records are (a local record of the
	// same name wins), read again within HostsInterval (default 2s) of
	// a change, while the filter runs (Start). HostsDomain is appended
	// to their single-label names ("nas" → "nas.lan"), when not "".
	HostsFiles    []string
	HostsDomain   string
	HostsInterval time.Duration
	// Groups give sets of clients lists of their own. A client in a
	// group (the first whose Clients hold its address, or whose Names
	// its name) is filtered by the group's lists instead of the lists
	// above.
	Groups []Group
	// Names names clients for the groups' Names; required when a group
	// has names.
	Names Namer
	// HTTPClient downloads the lists; nil means a client with timeouts
	// fit for large lists over slow lines.
	HTTPClient *http.Client
	// Required makes the lists a precondition of answering: until every
	// list has a version (downloaded, read, or read from its on-disk
	// copy), Ready fails and the resolver chain is to refuse queries
	// (proxy answers SERVFAIL with Extended DNS Error 14, Not Ready).
	// Without it, queries are answered unfiltered by a list that has
	// not loaded yet.
	Required bool
	// Previous is the filter this one replaces on a reload, or nil. A
	// list it also has (same source, same kind) is taken over with the
	// version in use, so that a reload never filters less while the new
	// lists load.
	Previous *Filter
	// Logger receives the filter's logs; nil discards them.
	Logger *slog.Logger
}

// Filter is the DNS firewall. Create it with New, put Middleware in the
// resolver chain, and call Start to refresh the lists in the background
// and Stop to end that.
type Filter struct {
	log     *slog.Logger
	client  *http.Client
	refresh time.Duration
	mode    blockMode
	local   atomic.Pointer[localNames] // swapped whole when a hosts file changes
	// localSrc is what local is built from.
	localSrc *localSource
	lists    []*list // every list, each once
	global   ruleSet
	groups   []group
	names    Namer
	// byName maps the groups' client names to the first group naming
	// each; nil when no group has names, and then no query asks for
	// its client's name.
	byName map[string]int
	// byLabel maps the groups' single-label client names (kids-tablet)
	// to the first group naming each: one matches a client named with
	// that first label in any domain (kids-tablet.lan from OpenWrt,
	// kids-tablet.fritz.box from a Fritz!Box), as a router's PTR answers
	// name its DHCP clients.
	byLabel map[string]int

	required bool
	loads    chan struct{} // a token per list loading; cap maxLoads

	blocked, cloaked, answeredLocally atomic.Uint64

	lifecycle sync.Once // Start, or Stop before Start
	mu        sync.Mutex
	cancel    context.CancelFunc // stops the refresh loop
	wg        sync.WaitGroup
}

// New checks opts and gives each list what version it can without the
// network: a file is read, a URL list is read from its on-disk copy or
// taken over from opts.Previous. It fails only for what can never work
// (an unknown block response, a bad local record, group or list source),
// never because a list cannot be loaded: such a list is pending (see
// Pending) and Start loads it in the background. Nothing New does waits
// on the network.
func New(opts Options) (*Filter, error) {
	f := &Filter{log: opts.Logger, client: opts.HTTPClient, refresh: opts.Refresh,
		required: opts.Required, loads: make(chan struct{}, maxLoads), names: opts.Names}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = headerTimeout
		f.client = &http.Client{Transport: t, Timeout: downloadTimeout}
	}
	if f.refresh == 0 {
		f.refresh = DefaultRefresh
	}
	var errs []error
	if f.refresh < 0 {
		errs = append(errs, fmt.Errorf("refresh %v: must be positive", opts.Refresh))
	}
	var err error
	if f.mode, err = parseBlockResponse(opts.BlockResponse); err != nil {
		errs = append(errs, err)
	}
	f.localSrc = &localSource{records: opts.LocalRecords, forwarded: opts.Forwarded, interval: opts.HostsInterval}
	if len(opts.HostsFiles) > 0 {
		f.localSrc.files = hosts.NewFiles(opts.HostsDomain, opts.HostsFiles...)
	}
	if f.localSrc.interval <= 0 {
		f.localSrc.interval = defaultHostsInterval
	}
	if ln, err := f.buildLocal(f.localSrc); err != nil {
		errs = append(errs, err)
	} else {
		f.local.Store(ln)
	}
	b := listSet{cacheDir: opts.CacheDir, byKey: make(map[listKey]*list), prev: opts.Previous}
	f.global = b.rules(opts.Blocklists, opts.Allowlists, "", &errs)
	f.addGroups(opts, &b, &errs)
	f.lists = b.lists
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if opts.CacheDir != "" {
		if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
			f.log.Warn("cannot keep the lists' last good copies on disk", "err", err)
		}
	}
	for _, l := range f.lists {
		f.loadLocal(l)
	}
	return f, nil
}

// listKey identifies a list: the same source may be a blocklist and an
// allowlist, and is then two lists.
type listKey struct {
	source string
	allow  bool
}

// listSet collects the configured lists, each once.
type listSet struct {
	cacheDir string
	byKey    map[listKey]*list
	lists    []*list
	prev     *Filter // whose lists are taken over; nil when none
}

// rules returns the rule set of these blocklists and allowlists, adding
// to errs what is wrong with their names; where prefixes the keys.
func (s *listSet) rules(block, allow []string, where string, errs *[]error) ruleSet {
	var rs ruleSet
	for _, src := range block {
		rs = s.add(rs, src, false, where+"blocklists", errs)
	}
	for _, src := range allow {
		rs = s.add(rs, src, true, where+"allowlists", errs)
	}
	return rs
}

func (s *listSet) add(rs ruleSet, source string, allow bool, where string, errs *[]error) ruleSet {
	key := listKey{source, allow}
	if l, ok := s.byKey[key]; ok {
		return append(rs, l)
	}
	isURL, err := checkSource(source)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("%s: %q: %w", where, source, err))
		return rs
	}
	l := s.prev.list(key, s.cacheDir)
	if l == nil {
		l = &list{source: source, name: ListName(source), allow: allow, isURL: isURL}
		if isURL && s.cacheDir != "" {
			l.cache = cacheFile(s.cacheDir, source)
		}
	}
	s.byKey[key] = l
	s.lists = append(s.lists, l)
	return append(rs, l)
}

// checkSource reports whether source is a URL, and whether it can be
// one we fetch.
func checkSource(source string) (isURL bool, err error) {
	if strings.TrimSpace(source) == "" {
		return false, errors.New("empty")
	}
	if !strings.Contains(source, "://") {
		return false, nil
	}
	u, err := url.Parse(source)
	if err != nil {
		return false, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return false, errors.New("want a file path or an http(s) URL")
	}
	return true, nil
}
