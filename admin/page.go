package admin

import (
	"bytes"
	"html/template"
	"net/http"
	"time"
)

// pageTemplate renders the status page's first view. html/template
// escapes every value for where it lands (text or attribute): upstream
// names come from the config file and last errors from the network.
var pageTemplate = template.Must(template.ParseFS(assetFS, "assets/index.html"))

// pageView is what the template shows: every figure already formatted,
// the same way assets/status.js formats them when it takes over.
type pageView struct {
	Version     string
	Uptime      string
	UpdatedISO  string
	UpdatedText string
	// FetchError is never set by the server; the script fills the
	// element in when it cannot reach /api/status.
	FetchError string

	QueryRate     string
	Queries       string
	CacheRate     string
	CacheDetail   string
	BlockedShare  string
	BlockedDetail string
	Window        string

	Upstreams []upstreamView
	Forward   []forwardView // one row per forwarding rule's server
	Clients   []clientView  // the busiest clients
}

// upstreamView is one row of the upstream table.
type upstreamView struct {
	Name          string
	Address       string
	Transport     string // tls, https, h3, quic or plain
	State         string // "up" or "down": the text shown and the CSS class
	SRTT          string
	Share         string
	ShareValue    float64 // for the <meter>, 0 to 100
	Errors        string
	LastError     string
	LastErrorWhen string
}

// page serves / : the status page with the figures of one snapshot,
// readable without JavaScript; the script then keeps it current.
func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, newPageView(s.snapshot())); err != nil {
		s.log.Warn("admin: rendering status page", "err", err)
		http.Error(w, "cannot render the status page", http.StatusInternalServerError)
		return
	}
	noStore(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

// newPageView formats st for the template. With one snapshot only, rates
// and shares are averages since the process started.
func newPageView(st Status) pageView {
	elapsed := st.Time.Sub(st.StartedAt)
	v := pageView{
		Version:     st.Version,
		Uptime:      formatSpan(elapsed),
		UpdatedISO:  st.Time.UTC().Format(time.RFC3339Nano),
		UpdatedText: st.Time.UTC().Format("15:04:05 UTC"),
		QueryRate:   dash,
		Queries:     formatCount(st.Queries) + " queries since start",
		Window:      "average since start",
	}
	if elapsed > 0 {
		v.QueryRate = formatRate(float64(st.Queries) / elapsed.Seconds())
	}
	if st.Queries == 0 {
		v.Window += ", no queries"
	}

	v.CacheRate, v.CacheDetail = "off", "the cache is off"
	if c := st.Cache; c != nil {
		v.CacheRate = formatPercent(c.Hits, c.Hits+c.Misses)
		v.CacheDetail = formatCount(uint64(max(c.Entries, 0))) + " entries \u00b7 " + formatCount(c.Stale) + " stale answers"
	}
	v.BlockedShare, v.BlockedDetail = "off", "the filter is off"
	if f := st.Filter; f != nil {
		v.BlockedShare = formatPercent(f.Blocked, st.Queries)
		v.BlockedDetail = formatCount(f.Blocked) + " blocked \u00b7 " + formatCount(uint64(max(f.Rules, 0))) + " rules" + f.pendingText()
	}

	var answered uint64
	for _, u := range st.Upstreams {
		answered += u.Queries
	}
	for _, u := range st.Upstreams {
		v.Upstreams = append(v.Upstreams, newUpstreamView(u, answered, st.Time))
	}
	v.Forward = newPageForward(st)
	v.Clients = newPageClients(st)
	return v
}

// newUpstreamView formats one upstream; answered is all upstreams'
// answers together, for its share.
func newUpstreamView(u UpstreamStatus, answered uint64, now time.Time) upstreamView {
	uv := upstreamView{
		Name:       u.Name,
		Address:    u.Address,
		Transport:  transportText(u.Transport),
		State:      "up",
		SRTT:       formatRTT(u.SRTT),
		Share:      formatPercent(u.Queries, answered),
		ShareValue: percentOf(u.Queries, answered),
		Errors:     formatCount(u.Errors),
		LastError:  "none",
	}
	if !u.Healthy {
		uv.State = "down"
	}
	if u.LastError != "" {
		uv.LastError = u.LastError
		if !u.LastErrorAt.IsZero() {
			uv.LastErrorWhen = formatAgo(now.Sub(u.LastErrorAt))
		}
	}
	return uv
}
