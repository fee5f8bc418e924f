package admin

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Hostile strings for the third upstream: if either reached the page as
// markup, an element would appear in the table (and CSP would still stop
// the script, which is why the test looks for the element).
const (
	hostileName    = `<img src=x onerror="document.title='pwned'">`
	hostileAddress = `"><script>document.title='pwned'</script>`
)

// browserTestTimeout bounds the browser test up to its cleanup (at most
// driverQuitTimeout more), keeping it under 30 s in all. Chromium takes
// about 4 s to start here, and the test needs about five of the page's
// polls, 2 s apart.
const browserTestTimeout = 24 * time.Second

// TestStatusPageInBrowser loads the status page in Debian's headless
// chromium while the figures change, and checks what a person would see:
// the first view, the script taking over, rates from flowing queries, an
// upstream going down, one added by a reload, hostile names shown as
// text, a layout that fits a phone and a desktop, and the page with
// JavaScript off.
//
// ADMIN_SCREENSHOT_DIR=dir saves phone.png and desktop.png there.
func TestStatusPageInBrowser(t *testing.T) {
	chromium, chromedriver := needBrowser(t)
	deadline := time.Now().Add(browserTestTimeout)

	started := time.Now().Add(-time.Hour)
	fake := &fakeProxy{st: Status{
		Version:   "test-1.0",
		StartedAt: started,
		Queries:   250,
		Upstreams: []UpstreamStatus{
			{Name: "cloudflare", Address: "1.1.1.1:853", Transport: "tls", Healthy: true, SRTT: 12300 * time.Microsecond, Queries: 100, OpenConns: 2},
			{Name: "quad9", Address: "9.9.9.9:443", Transport: "https", Healthy: true, SRTT: 4560 * time.Microsecond, Queries: 100, OpenConns: 1},
			{Name: hostileName, Address: hostileAddress, Healthy: true},
		},
		Cache:  &CacheStatus{Hits: 100, Misses: 100, Entries: 80},
		Filter: &FilterStatus{Blocked: 25, Rules: 1000},
	}}
	_, base := startServer(t, Options{Status: fake.Status, Ready: fake.Ready})
	d := startWebDriver(t, chromium, chromedriver)

	if err := d.navigate(base + "/"); err != nil {
		t.Fatal(err)
	}

	// The first view, once the script has fetched its first snapshot
	// (the counters the server rendered, averages since start): the
	// clock turns from the server's "15:04:05 UTC" to the browser's
	// local "15:04:05".
	first := waitFor(t, d, deadline, "the script's first update", func(p pageState) bool {
		return p.Updated != "" && !strings.HasSuffix(p.Updated, "UTC")
	})
	checkEqual(t, "title", first.Title, "dotproxy status")
	checkSlice(t, "names", first.Names, []string{"cloudflare", "quad9", hostileName})
	checkSlice(t, "states", first.States, []string{"up", "up", "up"})
	checkSlice(t, "transports", first.Transports, []string{"tls", "https", "plain"})
	checkSlice(t, "RTTs", first.RTTs, []string{"12 ms", "4.6 ms", "\u2014"})
	checkSlice(t, "shares since start", first.Shares, []string{"50.0%", "50.0%", "0.0%"})
	checkEqual(t, "window", first.Window, "average since start")
	checkEqual(t, "query rate since start", first.QueryRate, "4.2/min") // 250 in an hour
	checkEqual(t, "cache hit rate since start", first.CacheRate, "50.0%")
	checkEqual(t, "blocked share since start", first.Blocked, "10.0%")
	if first.Injected != 0 {
		t.Errorf("%d elements injected into the table by upstream names", first.Injected)
	}
	if first.UpColour == "" || first.UpColour == "rgba(0, 0, 0, 0)" {
		t.Errorf("the up badge has no background (%q): style.css did not load", first.UpColour)
	}

	// Queries flow: cloudflare answers three for every one of quad9's,
	// two cache hits for each miss, one query in five blocked.
	stop := flow(fake)
	defer stop()
	flowing := waitFor(t, d, deadline, "rates over the last seconds", func(p pageState) bool {
		return strings.HasPrefix(p.Window, "last ") && p.Updated != first.Updated &&
			slices.Equal(p.Shares, []string{"75.0%", "25.0%", "0.0%"})
	})
	if rate := perSecond(t, flowing.QueryRate); rate <= 1 {
		t.Errorf("query rate %q with queries flowing, want > 1/s", flowing.QueryRate)
	}
	checkEqual(t, "cache hit rate", flowing.CacheRate, "66.7%")
	checkEqual(t, "blocked share", flowing.Blocked, "20.0%")

	// quad9 goes down, slow and failing.
	const timeout = "read tcp 192.0.2.1:40000->9.9.9.9:853: i/o timeout"
	fake.update(func(st *Status) {
		q := &st.Upstreams[1]
		q.Healthy, q.SRTT, q.Errors = false, 250*time.Millisecond, 3
		q.LastError, q.LastErrorAt = timeout, time.Now()
	})
	down := waitFor(t, d, deadline, "quad9 shown down", func(p pageState) bool {
		return len(p.States) == 3 && p.States[1] == "down"
	})
	checkSlice(t, "states", down.States, []string{"up", "down", "up"})
	checkSlice(t, "rows marked down", down.DownRows, []string{"quad9"})
	checkSlice(t, "RTTs", down.RTTs, []string{"12 ms", "250 ms", "\u2014"})
	checkSlice(t, "last errors", down.Errors, []string{"none", timeout, "none"})
	checkEqual(t, "names after updates", down.Names[2], hostileName)
	if down.Injected != 0 || down.Title != "dotproxy status" {
		t.Errorf("hostile upstream name took effect: %d elements injected, title %q", down.Injected, down.Title)
	}
	if down.FetchError != "" {
		t.Errorf("page reports a fetch error: %q", down.FetchError)
	}

	// A reload adds an upstream: the script builds the rows anew, and
	// a hostile name stays text on that path too.
	fake.update(func(st *Status) {
		st.Upstreams = append(st.Upstreams, UpstreamStatus{Name: hostileAddress, Address: hostileName, Transport: "quic", Healthy: true})
	})
	added := waitFor(t, d, deadline, "the added upstream", func(p pageState) bool { return len(p.Names) == 4 })
	checkSlice(t, "names after the reload", added.Names, []string{"cloudflare", "quad9", hostileName, hostileAddress})
	checkSlice(t, "states after the reload", added.States, []string{"up", "down", "up", "up"})
	checkSlice(t, "transports after the reload", added.Transports, []string{"tls", "https", "plain", "quic"})
	if added.Injected != 0 || added.Title != "dotproxy status" {
		t.Errorf("hostile upstream name took effect: %d elements injected, title %q", added.Injected, added.Title)
	}

	checkLayout(t, d, deadline)

	// Without JavaScript the server's first render stands alone: the
	// same table, averages since start, the server's clock.
	if err := d.disableScript(); err != nil {
		t.Fatal(err)
	}
	if err := d.navigate(base + "/"); err != nil {
		t.Fatal(err)
	}
	static := waitFor(t, d, deadline, "the page without JavaScript", func(p pageState) bool {
		return strings.HasSuffix(p.Updated, " UTC")
	})
	checkSlice(t, "states without JavaScript", static.States, []string{"up", "down", "up", "up"})
	checkSlice(t, "transports without JavaScript", static.Transports, []string{"tls", "https", "plain", "quic"})
	checkSlice(t, "last errors without JavaScript", static.Errors, []string{"none", timeout, "none", "none"})
	checkEqual(t, "window without JavaScript", static.Window, "average since start")
	if static.Names[2] != hostileName || static.Injected != 0 {
		t.Errorf("without JavaScript the hostile name shows as %q with %d elements injected", static.Names[2], static.Injected)
	}
	if perSecond(t, static.QueryRate) <= 0 {
		t.Errorf("query rate without JavaScript = %q, want > 0", static.QueryRate)
	}
}

// checkLayout views the page as a phone and as a desktop: no sideways
// scrolling on either, the table as cards on the phone.
func checkLayout(t *testing.T, d *webDriver, deadline time.Time) {
	t.Helper()
	views := []struct {
		name          string
		width, height int
		scale         float64
		mobile        bool
		cards         bool
	}{
		{"phone", 390, 844, 3, true, true},
		{"desktop", 1280, 800, 1, false, false},
	}
	for _, v := range views {
		if err := d.emulate(v.width, v.height, v.scale, v.mobile); err != nil {
			t.Fatal(err)
		}
		p := waitFor(t, d, deadline, v.name+" viewport", func(p pageState) bool { return p.InnerWidth == v.width })
		if p.ScrollWidth > p.InnerWidth {
			t.Errorf("%s: page is %d px wide in a %d px viewport", v.name, p.ScrollWidth, p.InnerWidth)
		}
		if p.TheadHidden != v.cards {
			t.Errorf("%s: table header hidden = %v, want %v", v.name, p.TheadHidden, v.cards)
		}
		if dir := os.Getenv("ADMIN_SCREENSHOT_DIR"); dir != "" {
			png, err := d.screenshot()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, v.name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// flow makes queries flow through fake until the returned func is
// called: every 50 ms, 5 client queries, 3 answered by cloudflare and 1
// by quad9 while it is healthy, 2 cache hits and 1 miss, 1 blocked.
func flow(fake *fakeProxy) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			fake.update(func(st *Status) {
				st.Queries += 5
				st.Upstreams[0].Queries += 3
				if st.Upstreams[1].Healthy {
					st.Upstreams[1].Queries++
				}
				st.Cache.Hits += 2
				st.Cache.Misses++
				st.Filter.Blocked++
			})
		}
	}()
	return func() { cancel(); <-done }
}
