package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// decoder walks a yaml.Node tree onto a Config. It does not stop at the
// first problem: it records each one with its line and carries on, so that
// one run reports everything.
type decoder struct {
	file     string
	lines    map[string]int  // key path → line, for every key present with a value
	failed   map[string]bool // key paths with a problem already reported
	problems []*Problem
}

// field decodes the value n found at key path p.
type field func(n *yaml.Node, p string)

func newDecoder(file string) *decoder {
	return &decoder{file: file, lines: map[string]int{}, failed: map[string]bool{}}
}

// addf records a problem at line for key path p.
func (d *decoder) addf(line int, p, format string, args ...any) {
	d.failed[p] = true
	d.problems = append(d.problems, &Problem{File: d.file, Line: line, Key: p, Msg: fmt.Sprintf(format, args...)})
}

// document returns the content of data's one YAML document, or nil when
// there is nothing to decode. A file with no document, or only an empty
// or null one (blank, comments only, a bare "---" or "~"), is a problem:
// it is what an editor leaves for a moment while saving, and reading it as
// "all defaults" would swap the public resolvers in for the ones the
// operator chose. "{}" says "all defaults" on purpose. Further documents
// are an error unless empty (a stray trailing "---" is harmless).
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.empty(data)
		} else {
			d.syntax(err, data)
		}
		return nil
	}
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.syntax(err, data)
			return nil
		}
		if len(extra.Content) > 0 && !isNull(extra.Content[0]) {
			d.addf(extra.Line, "", "a second YAML document; the configuration is one document")
			break
		}
	}
	if len(doc.Content) == 0 || isNull(resolve(doc.Content[0])) {
		d.empty(data)
		return nil
	}
	if !d.aliasesWithinBound(doc.Content[0]) {
		return nil
	}
	return resolve(doc.Content[0])
}

// empty records that data configures nothing, at its last line.
func (d *decoder) empty(data []byte) {
	line := max(1, bytes.Count(bytes.TrimRight(data, "\n"), []byte("\n"))+1)
	d.addf(line, "", "the file is empty or holds only comments; write {} for the built-in defaults")
}

// yamlLine matches the line yaml.v3 puts in its syntax errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserProblems start the messages of yaml.v3's parser (parserc.go).
// It numbers their lines from 0, its scanner from 1 (go-yaml/yaml#205).
var yamlParserProblems = []string{
	"did not find expected <", "did not find expected node content", "did not find expected '-' indicator",
	"did not find expected key", "did not find expected ',' or ", "found undefined tag handle",
	"found duplicate %", "found incompatible YAML document",
}

// syntax records a YAML syntax error of data with a 1-based line.
func (d *decoder) syntax(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := unprintableLine(data)
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		for _, p := range yamlParserProblems {
			if strings.HasPrefix(msg, p) {
				line++
				break
			}
		}
		// yaml.v3 puts an error at the end of the stream on the line after
		// the last; name the last line instead.
		line = min(line, max(1, bytes.Count(bytes.TrimRight(data, "\n"), []byte("\n"))+1))
	}
	d.addf(line, "", "YAML syntax error: %s", msg)
}

// unprintableLine is the line of a yaml.v3 syntax error that names none.
// yaml.v3 omits the line for an error on line 1 and for bytes YAML does not
// allow (invalid UTF-8, control characters, YAML 1.2 §5.1); the latter are
// found here.
func unprintableLine(data []byte) int {
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		printable := r == '\t' || r == '\n' || r == '\r' || 0x20 <= r && r <= 0x7e || r == 0x85 ||
			0xa0 <= r && r <= 0xd7ff || 0xe000 <= r && r <= 0xfffd || 0x10000 <= r && r <= unicode.MaxRune
		if !printable || r == utf8.RuneError && size == 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		data = data[size:]
	}
	return 1
}

// mapping calls fields[key] for each key of the mapping n, in file order,
// and reports unknown and repeated keys. A null n is an omitted section and
// a null value an omitted key: both keep their defaults. It reports whether
// n was a mapping.
func (d *decoder) mapping(n *yaml.Node, p string, fields map[string]field) bool {
	if isNull(n) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		d.addf(n.Line, p, "expected a mapping of keys, got %s", describe(n))
		return false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.addf(k.Line, p, "a key must be a plain word, got %s", describe(k))
			continue
		}
		kp := join(p, k.Value)
		f, ok := fields[k.Value]
		switch first, dup := seen[k.Value]; {
		case !ok:
			d.addf(k.Line, kp, "unknown key")
			continue
		case dup:
			d.addf(k.Line, kp, "repeated key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		if isNull(v) {
			continue
		}
		d.lines[kp] = k.Line
		f(v, kp)
	}
	return true
}

// list calls item for each element of the sequence n with its index and
// path, reporting null elements. An empty list is reported with ifEmpty,
// unless ifEmpty is "" (empty allowed). It reports whether n was a list.
func (d *decoder) list(n *yaml.Node, p, ifEmpty string, item func(i int, n *yaml.Node, p string)) bool {
	if n.Kind != yaml.SequenceNode {
		d.addf(n.Line, p, "expected a list, got %s", describe(n))
		return false
	}
	if len(n.Content) == 0 && ifEmpty != "" {
		d.addf(n.Line, p, "%s", ifEmpty)
	}
	for i, e := range n.Content {
		ip := fmt.Sprintf("%s[%d]", p, i)
		e = resolve(e)
		d.lines[ip] = e.Line
		if isNull(e) {
			d.addf(e.Line, ip, "empty list entry")
			continue
		}
		item(i, e, ip)
	}
	return true
}

// scalar returns the text of the scalar n; want says what belongs there,
// for the message when n is a list or a mapping.
func (d *decoder) scalar(n *yaml.Node, p, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.addf(n.Line, p, "expected %s, got %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

// parseScalar decodes the scalar n with parse, whose error text becomes
// the problem. On failure it returns the zero value.
func parseScalar[T any](d *decoder, n *yaml.Node, p, want string, parse func(string) (T, error)) (T, bool) {
	var zero T
	s, ok := d.scalar(n, p, want)
	if !ok {
		return zero, false
	}
	v, err := parse(s)
	if err != nil {
		d.addf(n.Line, p, "%v", err)
		return zero, false
	}
	return v, true
}

// value is a field that stores a parsed scalar in dst.
func value[T any](d *decoder, dst *T, want string, parse func(string) (T, error)) field {
	return func(n *yaml.Node, p string) {
		if v, ok := parseScalar(d, n, p, want, parse); ok {
			*dst = v
		}
	}
}

// values is a field that replaces *dst with a list of parsed scalars.
// Entries that fail keep their place as zero values, so that indexes in
// later checks match the file's.
func values[T any](d *decoder, dst *[]T, want, ifEmpty string, parse func(string) (T, error)) field {
	return func(n *yaml.Node, p string) {
		out := make([]T, len(n.Content))
		if d.list(n, p, ifEmpty, func(i int, n *yaml.Node, p string) {
			out[i], _ = parseScalar(d, n, p, want, parse)
		}) {
			*dst = out
		}
	}
}

// section is a field for a nested mapping.
func section(d *decoder, fields map[string]field) field {
	return func(n *yaml.Node, p string) { d.mapping(n, p, fields) }
}

func join(p, key string) string {
	if p == "" {
		return key
	}
	return p + "." + key
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what n is, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return strconv.Quote(n.Value)
	}
	return "something else"
}
