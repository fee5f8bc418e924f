package admin

import (
	"strings"
	"testing"
	"time"
)

// TestPageForward: the server-rendered page lists each forwarding rule's
// servers with the rule's domains, and hides the section without rules.
func TestPageForward(t *testing.T) {
	st := sampleStatus()
	st.Forward = append(st.Forward, ForwardStatus{
		Domains: []string{"a.example", "b.example", "c.example", "d.example", "e.example", "f.example"},
		Servers: []UpstreamStatus{{Name: "10.8.0.53:853", Address: "10.8.0.53:853", Transport: "tls", TLSName: "dns.corp.example"}},
	})
	_, base := startServer(t, Options{Status: (&fakeProxy{st: st}).Status})
	_, body := fetch(t, "GET", base+"/")
	for _, want := range []string{
		`<span class="name">lan, 168.192.in-addr.arpa</span> <span class="addr">192.168.1.1:53</span></th>
<td data-label="Transport" class="transport">plain</td>`,
		`<span class="name">a.example, b.example, c.example, d.example, e.example, …</span> <span class="addr">10.8.0.53:853</span></th>
<td data-label="Transport" class="transport">tls</td>`,
		`<span class="state down">down</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, `id="forward-section" hidden`) {
		t.Error("the forwarding section is hidden with rules")
	}

	st.Forward = nil
	_, base = startServer(t, Options{Status: (&fakeProxy{st: st}).Status})
	if _, body = fetch(t, "GET", base+"/"); !strings.Contains(body, `id="forward-section" hidden`) {
		t.Error("the forwarding section is shown without rules")
	}
}

const readForward = `
const rows = Array.from(document.querySelectorAll('#forward tr'));
return {
	hidden: document.getElementById('forward-section').hidden,
	names: rows.map((r) => r.querySelector('.name').textContent),
	addrs: rows.map((r) => r.querySelector('.addr').textContent),
	states: rows.map((r) => r.querySelector('.state').textContent),
	errors: rows.map((r) => r.querySelector('.msg').textContent),
	injected: document.querySelectorAll('#forward img, #forward script').length,
	title: document.title,
};`

type forwardState struct {
	Hidden   bool     `json:"hidden"`
	Names    []string `json:"names"`
	Addrs    []string `json:"addrs"`
	States   []string `json:"states"`
	Errors   []string `json:"errors"`
	Injected int      `json:"injected"`
	Title    string   `json:"title"`
}

// TestForwardInBrowser: the script keeps the forwarding table current: a
// server whose queries fail shows down with its error, a hostile domain
// stays text, and the section goes when the rules do.
func TestForwardInBrowser(t *testing.T) {
	chromium, chromedriver := needBrowser(t)
	deadline := time.Now().Add(browserTestTimeout)
	st := sampleStatus()
	st.StartedAt = time.Now().Add(-time.Hour)
	st.Time = time.Time{}
	st.Forward[0].Domains = append(st.Forward[0].Domains, hostileName)
	fake := &fakeProxy{st: st}
	_, base := startServer(t, Options{Status: fake.Status, Ready: fake.Ready})
	d := startWebDriver(t, chromium, chromedriver)
	if err := d.navigate(base + "/"); err != nil {
		t.Fatal(err)
	}
	wait := func(what string, cond func(forwardState) bool) forwardState {
		t.Helper()
		for {
			var f forwardState
			if err := d.execute(readForward, &f); err != nil {
				t.Fatalf("reading the page: %v", err)
			}
			if cond(f) {
				return f
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; the page shows %+v", what, f)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	const timeout = "udp 192.168.1.1:53: i/o timeout"
	fake.update(func(st *Status) {
		s := &st.Forward[0].Servers[0]
		s.Healthy, s.Errors, s.LastError, s.LastErrorAt = false, 1, timeout, time.Now()
	})
	f := wait("the router shown down", func(f forwardState) bool { return len(f.States) == 1 && f.States[0] == "down" })
	checkSlice(t, "names", f.Names, []string{"lan, 168.192.in-addr.arpa, " + hostileName})
	checkSlice(t, "addresses", f.Addrs, []string{"192.168.1.1:53"})
	checkSlice(t, "errors", f.Errors, []string{timeout})
	if f.Injected != 0 || f.Title != "dotproxy status" || f.Hidden {
		t.Errorf("injected %d, title %q, hidden %v", f.Injected, f.Title, f.Hidden)
	}

	fake.update(func(st *Status) { st.Forward = []ForwardStatus{} })
	wait("the section hidden", func(f forwardState) bool { return f.Hidden && len(f.Names) == 0 })
}
