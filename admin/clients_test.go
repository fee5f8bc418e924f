package admin

import (
	"strings"
	"testing"
	"time"
)

// TestPageClients: the server-rendered page lists the busiest clients
// with their names (a dash when unknown), counts and shares of all
// queries, a hostile name escaped; without clients it says so.
func TestPageClients(t *testing.T) {
	st := sampleStatus()
	st.Clients = append(st.Clients, ClientStatus{Address: "192.168.1.66", Name: hostileName, Queries: 1})
	_, base := startServer(t, Options{Status: (&fakeProxy{st: st}).Status})
	_, body := fetch(t, "GET", base+"/")
	for _, want := range []string{
		`<span class="name">kids-tablet</span> <span class="addr">192.168.1.23</span>`,
		`<td data-label="Queries since start" class="num">1,800</td>`,
		`<span class="share">50.0%</span>`,
		`<span class="name">—</span> <span class="addr">fd00::5</span>`,
		`<span class="share">1.0%</span>`,
		`<span class="name">&lt;img src=x onerror=&#34;document.title=&#39;pwned&#39;&#34;&gt;</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	st.Clients = nil
	_, base = startServer(t, Options{Status: (&fakeProxy{st: st}).Status})
	if _, body = fetch(t, "GET", base+"/"); !strings.Contains(body, `<td colspan="3">No queries yet.</td>`) {
		t.Error("no word of there being no clients")
	}
}

const readClients = `
const rows = Array.from(document.querySelectorAll('#clients tr:not(.empty)'));
return {
	names: rows.map((r) => r.querySelector('.name').textContent),
	addrs: rows.map((r) => r.querySelector('.addr').textContent),
	counts: rows.map((r) => r.cells[1].textContent),
	shares: rows.map((r) => r.querySelector('.share').textContent),
	empty: document.querySelectorAll('#clients tr.empty').length,
	injected: document.querySelectorAll('#clients img, #clients script').length,
	title: document.title,
};`

type clientsState struct {
	Names    []string `json:"names"`
	Addrs    []string `json:"addrs"`
	Counts   []string `json:"counts"`
	Shares   []string `json:"shares"`
	Empty    int      `json:"empty"`
	Injected int      `json:"injected"`
	Title    string   `json:"title"`
}

// TestClientsInBrowser: the script keeps the top-clients table current:
// a client named since shows its name, a hostile name stays text, and
// the table says so when there are no clients.
func TestClientsInBrowser(t *testing.T) {
	chromium, chromedriver := needBrowser(t)
	deadline := time.Now().Add(browserTestTimeout)
	st := sampleStatus()
	st.StartedAt = time.Now().Add(-time.Hour)
	st.Time = time.Time{}
	fake := &fakeProxy{st: st}
	_, base := startServer(t, Options{Status: fake.Status, Ready: fake.Ready})
	d := startWebDriver(t, chromium, chromedriver)
	if err := d.navigate(base + "/"); err != nil {
		t.Fatal(err)
	}
	wait := func(what string, cond func(clientsState) bool) clientsState {
		t.Helper()
		for {
			var c clientsState
			if err := d.execute(readClients, &c); err != nil {
				t.Fatalf("reading the page: %v", err)
			}
			if cond(c) {
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; the page shows %+v", what, c)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	fake.update(func(st *Status) {
		st.Queries = 4000
		st.Clients = []ClientStatus{
			{Address: "fd00::5", Name: "tv", Queries: 2000},
			{Address: "192.168.1.23", Name: "kids-tablet", Queries: 1800},
			{Address: "192.168.1.66", Name: hostileName, Queries: 4},
		}
	})
	c := wait("the client named", func(c clientsState) bool { return len(c.Names) == 3 && c.Names[0] == "tv" })
	checkSlice(t, "names", c.Names, []string{"tv", "kids-tablet", hostileName})
	checkSlice(t, "addresses", c.Addrs, []string{"fd00::5", "192.168.1.23", "192.168.1.66"})
	checkSlice(t, "counts", c.Counts, []string{"2,000", "1,800", "4"})
	checkSlice(t, "shares", c.Shares, []string{"50.0%", "45.0%", "0.1%"})
	if c.Injected != 0 || c.Title != "dotproxy status" {
		t.Errorf("injected %d, title %q", c.Injected, c.Title)
	}

	fake.update(func(st *Status) { st.Clients = []ClientStatus{} })
	wait("the empty table", func(c clientsState) bool { return len(c.Names) == 0 && c.Empty == 1 })
}
