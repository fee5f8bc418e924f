package e2e

import (
	"regexp"
	"slices"
	"strings"
)

// answer is one DNS response as dig, kdig or mdig print it.
type answer struct {
	id      string
	status  string   // NOERROR, SERVFAIL, ...
	flags   []string // qr, aa, tc, rd, ra, ...
	opt     bool     // it had an OPT record
	ede     string   // the Extended DNS Error info-code, "" if none
	records []record // the answer section
}

// record is one resource record of an answer section.
type record struct {
	name, rtype, data string
}

var (
	headerRE = regexp.MustCompile(`status: ([A-Z]+)[,;] id: (\d+)`)
	flagsRE  = regexp.MustCompile(`(?i)^;; flags:([^;]*);`)
	edeRE    = regexp.MustCompile(`\bEDE: (\d+)`)
)

// parseAnswers reads the responses in the output of dig, kdig or mdig,
// which all print a ->>HEADER<<- line per response, then its flags,
// EDNS pseudosection and sections.
func parseAnswers(out string) []*answer {
	var answers []*answer
	var cur *answer
	inAnswer := false
	for line := range strings.Lines(out) {
		line = strings.TrimRight(line, "\n")
		if m := headerRE.FindStringSubmatch(line); m != nil && strings.Contains(line, "->>HEADER<<-") {
			cur = &answer{status: m[1], id: m[2]}
			answers = append(answers, cur)
			inAnswer = false
			continue
		}
		if cur == nil {
			continue
		}
		switch {
		case flagsRE.MatchString(line):
			cur.flags = strings.Fields(flagsRE.FindStringSubmatch(line)[1])
		case strings.HasPrefix(line, ";; OPT PSEUDOSECTION") || strings.HasPrefix(line, ";; EDNS PSEUDOSECTION"):
			cur.opt = true
		case edeRE.MatchString(line):
			cur.ede = edeRE.FindStringSubmatch(line)[1]
		case strings.HasPrefix(line, ";; ANSWER SECTION"):
			inAnswer = true
		case line == "" || strings.HasPrefix(line, ";"):
			inAnswer = false
		case inAnswer:
			if f := strings.Fields(line); len(f) >= 5 {
				cur.records = append(cur.records, record{name: f[0], rtype: f[3], data: strings.Join(f[4:], " ")})
			}
		}
	}
	return answers
}

// hasFlag reports whether the header flag f was set.
func (a *answer) hasFlag(f string) bool { return slices.Contains(a.flags, f) }

// data returns the data of the answer's records of type rtype, TXT
// strings without their quotes.
func (a *answer) data(rtype string) []string {
	var out []string
	for _, r := range a.records {
		if r.rtype == rtype {
			out = append(out, strings.Trim(r.data, `"`))
		}
	}
	return out
}
