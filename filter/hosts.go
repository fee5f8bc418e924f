package filter

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/dotproxy/dotproxy/hosts"
)

// defaultHostsInterval is how often the hosts files are checked for a
// change: a new DHCP lease is answered within it, and a check reads only
// the files' metadata.
const defaultHostsInterval = 2 * time.Second

// localSource is what the local names are built from: the configured
// records and forwarded domains, and the hosts files, read again when
// they change.
type localSource struct {
	records   map[string][]netip.Addr
	forwarded []string
	files     *hosts.Files // nil without hosts files
	interval  time.Duration
}

// buildLocal returns the local names from the records and, with hosts files,
// what they hold now; a hosts name that local_records also names keeps
// the record's addresses. A bad line, or a name the filter cannot serve,
// is logged and skipped.
func (f *Filter) buildLocal(src *localSource) (*localNames, error) {
	records := src.records
	var clients map[netip.Addr]string
	if src.files != nil {
		entries, problems := src.files.Load(time.Now())
		for _, p := range problems {
			f.log.Warn("hosts file: line skipped", "file", p.File, "line", p.Line, "err", p.Msg)
		}
		records = maps.Clone(src.records)
		if records == nil {
			records = make(map[string][]netip.Addr, len(entries))
		}
		clients = make(map[netip.Addr]string)
		for _, e := range entries {
			if _, ok := clients[e.Addr]; !ok {
				clients[e.Addr] = e.Name // the lease's host name, a hosts line's first name
			}
			name, err := normalizeName(strings.TrimSuffix(e.Name, "."))
			if err != nil {
				f.log.Warn("hosts file: name skipped", "name", e.Name, "err", err)
				continue
			}
			if _, configured := src.records[name]; configured {
				continue
			}
			if !slices.Contains(records[name], e.Addr) {
				records[name] = append(records[name], e.Addr)
			}
		}
	}
	ln, err := newLocalNames(records, src.forwarded)
	if ln != nil {
		ln.clients = clients
	}
	return ln, err
}

// HostName returns the name the hosts and lease files give the client at
// addr, as they are now: the lease's host name, or the first name of
// the first hosts line with addr; "" for none. Files earlier in
// Options.HostsFiles win.
func (f *Filter) HostName(addr netip.Addr) string {
	return f.local.Load().clients[addr]
}

// hostsLoop reads the hosts files again whenever one changes, until ctx
// ends, and swaps the local names whole: a query sees the old names or
// the new, never a mix.
func (f *Filter) hostsLoop(ctx context.Context) {
	defer f.wg.Done()
	tick := time.NewTicker(f.localSrc.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !f.localSrc.files.Changed() {
			continue
		}
		ln, err := f.buildLocal(f.localSrc)
		if err != nil {
			f.log.Warn("hosts files: keeping the names read before", "err", err)
			continue
		}
		f.local.Store(ln)
		f.log.Info("hosts files read again", "names", len(ln.addrs))
	}
}
