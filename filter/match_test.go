package filter

import (
	"fmt"
	"strings"
	"testing"
)

// testList returns a list named source holding the rules of content.
func testList(t testing.TB, source, content string, allow bool) *list {
	t.Helper()
	p, err := parse(strings.NewReader(content), allow)
	if err != nil {
		t.Fatal(err)
	}
	l := &list{source: source, allow: allow}
	l.table.Store(p.table)
	return l
}

func TestMatch(t *testing.T) {
	block := testList(t, "block", `
example.com
|exact.org^
*.wild.net
||nested.example.io^
@@||ok.nested.example.io^
deep.a.b.c.d.test
`, false)
	other := testList(t, "other", "ads.example.io\ninner.nested.example.io\n", false)
	allow := testList(t, "allow", "good.example.com\n|only.exact.org^\n*.wild.example.com\n", true)
	rs := ruleSet{block, other, allow}

	for _, tc := range []struct {
		name       string
		want       string // "block LIST RULE", "allow LIST RULE" or "-"
		rules      ruleSet
		skipGlobal bool
	}{
		{name: "example.com", want: "block block example.com"},
		{name: "www.example.com", want: "block block example.com"},
		{name: "a.b.c.example.com", want: "block block example.com"},
		{name: "notexample.com", want: "-"},
		{name: "com", want: "-"},
		{name: "example.com.evil", want: "-"},
		{name: "exact.org", want: "block block |exact.org^"},
		{name: "www.exact.org", want: "-"},
		{name: "wild.net", want: "-"},
		{name: "x.wild.net", want: "block block *.wild.net"},
		{name: "y.x.wild.net", want: "block block *.wild.net"},
		{name: "nested.example.io", want: "block block nested.example.io"},
		{name: "ok.nested.example.io", want: "allow block @@ok.nested.example.io"},
		// an exception wins over a more specific block in another list
		{name: "inner.nested.example.io", want: "block other inner.nested.example.io", rules: ruleSet{other}},
		{name: "x.inner.nested.example.io", want: "block other inner.nested.example.io", rules: ruleSet{block, other}},
		{name: "x.ok.nested.example.io", want: "allow block @@ok.nested.example.io"},
		{name: "ads.example.io", want: "block other ads.example.io"},
		// allowlists override blocklists, also a more specific block
		{name: "good.example.com", want: "allow allow @@good.example.com"},
		{name: "sub.good.example.com", want: "allow allow @@good.example.com"},
		{name: "x.wild.example.com", want: "allow allow @@*.wild.example.com"},
		{name: "wild.example.com", want: "block block example.com"},
		{name: "only.exact.org", want: "allow allow @@|only.exact.org^"},
		{name: "www.only.exact.org", want: "-"},
		// the most specific of several blocks is reported
		{name: "deep.a.b.c.d.test", want: "block block deep.a.b.c.d.test"},
		{name: "x.deep.a.b.c.d.test", want: "block block deep.a.b.c.d.test"},
		// an escaped dot is inside a label: a\.example.com is the label
		// "a.example" under com, not a name under example.com
		{name: `a\.example.com`, want: "-"},
		{name: `www.a\.example.com`, want: "-"},
		{name: `a\.b.example.com`, want: "block block example.com"},
		{name: "", want: "-"},
		{name: "www.example.com", rules: ruleSet{}, want: "-"},
	} {
		rules := tc.rules
		if rules == nil {
			rules = rs
		}
		t.Run(tc.name, func(t *testing.T) {
			v := rules.match(tc.name)
			got := "-"
			switch {
			case v.blocked():
				got = fmt.Sprintf("block %s %s", v.list.source, v.ruleText())
			case v.allowed():
				got = fmt.Sprintf("allow %s %s", v.list.source, v.ruleText())
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLowerASCII(t *testing.T) {
	for in, want := range map[string]string{
		"example.com.": "example.com.", "WwW.ExAmPlE.CoM.": "www.example.com.", ".": ".", `A\065.com.`: `a\065.com.`,
	} {
		if got := lowerASCII(in); got != want {
			t.Errorf("lowerASCII(%q) = %q, want %q", in, got, want)
		}
	}
	var sink string
	if n := testing.AllocsPerRun(100, func() { sink = lowerASCII("www.example.com.") }); n != 0 || sink == "" {
		t.Errorf("lowerASCII of a lower-case name allocates %v times", n)
	}
}

func TestTable(t *testing.T) {
	var b tableBuilder
	const n = 40000
	pad := strings.Repeat("x", 60) // 3 MB of names: several chunks
	for i := range n {
		b.add([]byte(fmt.Sprintf("host%d.%s.example.com", i, pad)), blockTree)
	}
	b.add([]byte("HOST7."+pad+".example.com"), allowExact) // the same name again: kinds merge
	tb := b.build()
	if tb.names != n {
		t.Fatalf("names %d, want %d", tb.names, n)
	}
	if load := float64(tb.names) / float64(len(tb.slots)); load > 0.67 {
		t.Errorf("load factor %.2f, want at most 2/3", load)
	}
	if len(tb.chunks) < 3 {
		t.Errorf("%d chunks, want the names spread over several", len(tb.chunks))
	}
	misses := 0 // names not in the table that the Bloom filter lets through
	for i := range n {
		if tb.bloom.has(hashName(fmt.Sprintf("other%d.example.net", i))) {
			misses++
		}
	}
	if rate := float64(misses) / n; rate > 0.03 {
		t.Errorf("Bloom filter false positive rate %.3f, want about 0.01", rate)
	}
	for i := range n {
		name := fmt.Sprintf("host%d.%s.example.com", i, pad)
		want := blockTree
		if i == 7 {
			want |= allowExact
		}
		if k := tb.lookup(name, hashName(name)); k != want {
			t.Fatalf("%s: kinds %b, want %b", name, k, want)
		}
		miss := fmt.Sprintf("host%d.example.org", i)
		if k := tb.lookup(miss, hashName(miss)); k != 0 {
			t.Fatalf("%s: found, kinds %b", miss, k)
		}
	}
	var empty tableBuilder
	if k := empty.build().lookup("com", hashName("com")); k != 0 {
		t.Fatal("empty table found a name")
	}
	var nilTable *table
	if k := nilTable.lookup("com", hashName("com")); k != 0 {
		t.Fatal("nil table found a name")
	}
}

func TestMatchAllocs(t *testing.T) {
	rs := ruleSet{testList(t, "a", "example.com\n", false), testList(t, "b", "good.example.com\n", true)}
	for _, name := range []string{"www.example.com", "good.example.com", "www.example.org"} {
		if n := testing.AllocsPerRun(100, func() { rs.match(name) }); n != 0 {
			t.Errorf("match(%s) allocates %v times", name, n)
		}
	}
}
