package config

import (
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/hashicorp/go-multierror"
)

// envSource is the File of a Problem found in an environment variable.
const envSource = "environment"

// Problem is one thing wrong with the configuration and where it is.
// Parse, Load and ApplyEnv return all the Problems they find together in
// a *multierror.Error; errors.As finds the first.
type Problem struct {
	File string // the file name given to Parse, or "environment"
	Line int    // 1-based; 0 when the problem has no one line
	Key  string // key path ("upstreams[1].tls_name") or variable name; "" for a YAML syntax error
	Msg  string // what is wrong
}

// Error formats p as FILE:LINE: KEY: MSG, leaving out what p lacks. It is
// always one line: a key or message holding a line break or another
// character that does not print (a quoted YAML key may hold any) is
// quoted.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	if p.File != "" || p.Line > 0 {
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(printable(p.Key) + ": ")
	}
	b.WriteString(printable(p.Msg))
	return b.String()
}

// printable returns s, quoted if it holds a character that does not print.
func printable(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// joinProblems returns nil for no problems, else one error listing them
// in file order, one per line.
func joinProblems(ps []*Problem) error {
	if len(ps) == 0 {
		return nil
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	var me *multierror.Error
	for _, p := range ps {
		me = multierror.Append(me, p)
	}
	me.ErrorFormat = oneLineEach
	return me
}

// oneLineEach formats a multierror as its errors, one per line, with no
// header or bullets: main prints its own header above them.
func oneLineEach(es []error) string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
