package filter

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"
)

// rules returns every name in t with its kinds.
func (t *table) rules() map[string]kind {
	got := make(map[string]kind)
	for _, c := range t.chunks {
		for off := 0; off < len(c); off += 2 + int(c[off+1]) {
			name := string(c[off+2 : off+2+int(c[off+1])])
			got[name] = t.lookup(name, hashName(name))
		}
	}
	return got
}

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		line  string
		allow bool // an allowlist
		want  map[string]kind
		err   error
	}{
		// hosts files
		{line: "0.0.0.0 ads.example.com", want: map[string]kind{"ads.example.com": blockTree}},
		{line: "127.0.0.1\tads.example.com  track.example.com", want: map[string]kind{"ads.example.com": blockTree, "track.example.com": blockTree}},
		{line: ":: ads.example.com", want: map[string]kind{"ads.example.com": blockTree}},
		{line: "0.0.0.0 ads.example.com # tracking", want: map[string]kind{"ads.example.com": blockTree}},
		{line: "0.0.0.0 ads.example.com#not-a-comment", err: errNotName},
		{line: "127.0.0.1 localhost", want: map[string]kind{}},
		{line: "::1 ip6-localhost ip6-loopback", want: map[string]kind{}},
		{line: "fe80::1%lo0 localhost", want: map[string]kind{}},
		{line: "255.255.255.255 broadcasthost", want: map[string]kind{}},
		{line: "0.0.0.0 0.0.0.0", want: map[string]kind{}},
		{line: "127.0.0.1 localhost.localdomain", want: map[string]kind{}},
		{line: "127.0.0.1 LocalHost.LocalDomain", want: map[string]kind{}},
		{line: "192.168.1.5 mybox", want: map[string]kind{}},
		{line: "ads.example.com 0.0.0.0", err: errNotHosts},
		{line: "0.0.0.0 ads.example.com bad!name", err: errNotName},
		// plain domain lists
		{line: "ads.example.com", want: map[string]kind{"ads.example.com": blockTree}},
		{line: "ADS.Example.COM.", want: map[string]kind{"ads.example.com": blockTree}},
		{line: "xn--bcher-kva.example", want: map[string]kind{"xn--bcher-kva.example": blockTree}},
		{line: "_dmarc.example.com", want: map[string]kind{"_dmarc.example.com": blockTree}},
		{line: "ads.example.com ! comment", want: map[string]kind{"ads.example.com": blockTree}},
		{line: "*.example.com", want: map[string]kind{"example.com": blockBelow}},
		{line: "*.example.com", allow: true, want: map[string]kind{"example.com": allowBelow}},
		{line: "ads.example.com", allow: true, want: map[string]kind{"ads.example.com": allowTree}},
		{line: "bücher.example", err: errNonASCII},
		{line: "1.2.3.4", err: errIPName},
		{line: "a..example.com", err: errNotName},
		{line: ".example.com", err: errNotName},
		{line: strings.Repeat("a", 64) + ".com", err: errNotName},
		{line: strings.Repeat("abcdefghi.", 26) + "com", err: errNotName},
		{line: "ads*.example.com", err: errNotDNSRule},
		{line: "*", err: errNotDNSRule},
		{line: "example.com/ads", err: errNotDNSRule},
		{line: "example.com##.banner", err: errNotDNSRule},
		// adblock
		{line: "||ads.example.com^", want: map[string]kind{"ads.example.com": blockTree}},
		{line: "||ads.example.com", want: map[string]kind{"ads.example.com": blockTree}},
		{line: "||ads.example.com^|", want: map[string]kind{"ads.example.com": blockTree}},
		{line: "||Ads.Example.com.^", want: map[string]kind{"ads.example.com": blockTree}},
		{line: "||*.example.com^", want: map[string]kind{"example.com": blockBelow}},
		{line: "|ads.example.com^", want: map[string]kind{"ads.example.com": blockExact}},
		{line: "@@||ads.example.com^", want: map[string]kind{"ads.example.com": allowTree}},
		{line: "@@|ads.example.com^", want: map[string]kind{"ads.example.com": allowExact}},
		{line: "@@||ads.example.com^", allow: true, want: map[string]kind{"ads.example.com": allowTree}},
		{line: "||ads.example.com^ # comment", want: map[string]kind{"ads.example.com": blockTree}},
		{line: "||ads.example.com^$important", err: errModifier},
		{line: "||ads.example.com^$third-party", err: errModifier},
		{line: "@@ads.example.com", err: errNotDNSRule},
		{line: "||ads.example.com/banner.gif", err: errNotDNSRule},
		{line: "|https://ads.example.com^", err: errNotDNSRule},
		{line: "/ads[0-9]+\\.example\\.com/", err: errNotDNSRule},
	} {
		t.Run(tc.line, func(t *testing.T) {
			var b tableBuilder
			err := b.parseLine(ruleText([]byte(tc.line)), tc.allow)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if got := b.build().rules(); !maps.Equal(got, tc.want) {
				t.Fatalf("rules %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	list := "\uFEFF# Title: test list\r\n" +
		"! adblock comment\r\n" +
		"[Adblock Plus 2.0]\r\n" +
		"\r\n" +
		"   \r\n" +
		"0.0.0.0 hosts.example.com # inline\r\n" +
		"plain.example.com\r\n" +
		"||adblock.example.com^\r\n" +
		"@@||ok.adblock.example.com^\r\n" +
		"PLAIN.example.com.\r\n" + // a duplicate
		"|exact.example.com^\n" +
		"*.wild.example.com\n" +
		"not a rule at all\n" +
		"||x.example.com^$third-party\n" +
		"last.example.com" // no final newline
	p, err := parse(strings.NewReader(list), false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]kind{
		"hosts.example.com": blockTree, "plain.example.com": blockTree, "adblock.example.com": blockTree,
		"ok.adblock.example.com": allowTree, "exact.example.com": blockExact, "wild.example.com": blockBelow,
		"last.example.com": blockTree,
	}
	if got := p.table.rules(); !maps.Equal(got, want) {
		t.Fatalf("rules %v, want %v", got, want)
	}
	if p.table.names != len(want) {
		t.Errorf("names %d, want %d", p.table.names, len(want))
	}
	if p.lines != 10 || p.malformed != 2 {
		t.Errorf("lines %d, malformed %d; want 10 and 2", p.lines, p.malformed)
	}
	wantSamples := []string{
		`line 13: "not a rule at all": several fields, but the first is not an IP address`,
		`line 14: "||x.example.com^$third-party": adblock modifiers ($...) are not supported`,
	}
	if fmt.Sprint(p.samples) != fmt.Sprint(wantSamples) {
		t.Errorf("samples\n%q\nwant\n%q", p.samples, wantSamples)
	}
}

func TestParseSampleLimit(t *testing.T) {
	var b strings.Builder
	for i := range 20 {
		fmt.Fprintf(&b, "good%d.example.com\nbad%d!\n", i, i)
	}
	p, err := parse(strings.NewReader(b.String()), false)
	if err != nil {
		t.Fatal(err)
	}
	if p.malformed != 20 || len(p.samples) != malformedSamples || !strings.HasPrefix(p.samples[0], "line 2: ") {
		t.Fatalf("malformed %d, samples %q", p.malformed, p.samples)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct {
		name, list string
		want       error
	}{
		{"html page", "<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>\n", errHTML},
		{"html after blank lines", "\n\n  <html>\n<head>\n", errHTML},
		{"mostly garbage", "ads.example.com\n{\"error\": \"quota\"}\n{\"code\": 429}\n", errGarbage},
		{"binary", "ads.example.com\n" + strings.Repeat("\x00", 70000), errLongLine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parse(strings.NewReader(tc.list), false); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("half garbage is kept", func(t *testing.T) {
		p, err := parse(strings.NewReader("a.example.com\nb!\n"), false)
		if err != nil || p.table.names != 1 {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("empty list", func(t *testing.T) {
		p, err := parse(strings.NewReader("# nothing yet\n"), false)
		if err != nil || p.table.names != 0 || p.table.lookup("com", hashName("com")) != 0 {
			t.Fatalf("err %v", err)
		}
	})
}

func TestLimitReader(t *testing.T) {
	for _, tc := range []struct {
		size, limit int64
		err         error
	}{
		{10, 10, nil},
		{11, 10, errTooBig},
	} {
		lr := &limitReader{r: strings.NewReader(strings.Repeat("x", int(tc.size))), left: tc.limit + 1}
		if _, err := io.ReadAll(lr); !errors.Is(err, tc.err) {
			t.Errorf("%d bytes, limit %d: error %v, want %v", tc.size, tc.limit, err, tc.err)
		}
	}
}
