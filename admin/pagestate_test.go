package admin

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Reading the status page in the browser, for browser_test.go.

// pageState is what the page shows, read from the DOM in one go.
type pageState struct {
	Title       string   `json:"title"`
	Updated     string   `json:"updated"`
	Window      string   `json:"window"`
	QueryRate   string   `json:"queryRate"`
	CacheRate   string   `json:"cacheRate"`
	Blocked     string   `json:"blocked"`
	Names       []string `json:"names"`
	States      []string `json:"states"`
	Transports  []string `json:"transports"`
	RTTs        []string `json:"rtts"`
	Shares      []string `json:"shares"`
	Errors      []string `json:"errors"`
	DownRows    []string `json:"downRows"`
	Injected    int      `json:"injected"`
	FetchError  string   `json:"fetchError"`
	UpColour    string   `json:"upColour"`
	ScrollWidth int      `json:"scrollWidth"`
	InnerWidth  int      `json:"innerWidth"`
	TheadHidden bool     `json:"theadHidden"`
}

const readPage = `
const texts = (sel) => Array.from(document.querySelectorAll(sel), (e) => e.textContent);
const rows = Array.from(document.querySelectorAll('#upstreams tr[data-name]'));
const up = document.querySelector('#upstreams .state.up');
const fetchError = document.getElementById('fetch-error');
return {
	title: document.title,
	updated: document.getElementById('updated-time').textContent,
	window: document.getElementById('window').textContent,
	queryRate: document.getElementById('query-rate').textContent,
	cacheRate: document.getElementById('cache-rate').textContent,
	blocked: document.getElementById('blocked-share').textContent,
	names: texts('#upstreams .name'),
	states: texts('#upstreams .state'),
	transports: texts('#upstreams .transport'),
	rtts: rows.map((r) => r.cells[3].textContent),
	shares: texts('#upstreams .share'),
	errors: texts('#upstreams .msg'),
	downRows: rows.filter((r) => r.classList.contains('is-down')).map((r) => r.dataset.name),
	injected: document.querySelectorAll('#upstreams img, #upstreams script').length,
	fetchError: fetchError.hidden ? '' : fetchError.textContent,
	upColour: up ? getComputedStyle(up).backgroundColor : '',
	scrollWidth: document.documentElement.scrollWidth,
	innerWidth: window.innerWidth,
	theadHidden: getComputedStyle(document.querySelector('.upstreams thead')).position === 'absolute',
};`

// waitFor reads the page every 100 ms until cond holds, and fails the
// test at the deadline with the last state seen.
func waitFor(t *testing.T, d *webDriver, deadline time.Time, what string, cond func(pageState) bool) pageState {
	t.Helper()
	var p pageState
	for {
		p = pageState{}
		if err := d.execute(readPage, &p); err != nil {
			t.Fatalf("waiting for %s: reading the page: %v", what, err)
		}
		if cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; the page shows %+v", what, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// perSecond parses the page's "12/s", "3.4/s" or "30/min".
func perSecond(t *testing.T, s string) float64 {
	t.Helper()
	n, per := s, 1.0
	if m, ok := strings.CutSuffix(s, "/min"); ok {
		n, per = m, 60
	} else {
		n = strings.TrimSuffix(s, "/s")
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(n, ",", ""), 64)
	if err != nil {
		t.Errorf("query rate %q is not a rate: %v", s, err)
	}
	return f / per
}

func checkEqual(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func checkSlice(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}
