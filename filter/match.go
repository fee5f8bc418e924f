package filter

import "strings"

// ruleSet is the lists that apply to one set of clients: the global
// lists, or one group's.
type ruleSet []*list

// verdict is what a rule set says about one name.
type verdict struct {
	list *list  // the list whose rule decided; nil when no rule matched
	rule string // the name the rule is stored under
	kind kind   // the kinds of that rule that matched
}

func (v verdict) blocked() bool { return v.kind&blockKinds != 0 }
func (v verdict) allowed() bool { return v.kind&allowKinds != 0 }

// ruleText is the matching rule in the canonical form of the list syntax,
// for logs: example.com, |example.com^, *.example.com, with @@ in front
// of an exception.
func (v verdict) ruleText() string {
	k := v.kind
	prefix := ""
	if v.allowed() {
		k >>= allowShift
		prefix = "@@"
	}
	switch {
	case k&blockTree != 0:
		return prefix + v.rule
	case k&blockExact != 0:
		return prefix + "|" + v.rule + "^"
	default:
		return prefix + "*." + v.rule
	}
}

// match decides name, which is lower-case and has no trailing dot, by
// its label-wise suffixes: for a.b.example.com it looks up
// a.b.example.com, b.example.com, example.com and com, one hash each,
// in every list of the set. An exception anywhere wins over a block; of
// several blocks the most specific is reported.
func (rs ruleSet) match(name string) verdict {
	var block verdict
	if name == "" || len(rs) == 0 {
		return block
	}
	want := treeKinds | exactKinds // the query name itself
	for s := name; ; {
		h := hashName(s)
		for _, l := range rs {
			k := l.table.Load().lookup(s, h) & want
			if k&allowKinds != 0 {
				return verdict{list: l, rule: s, kind: k & allowKinds}
			}
			if k != 0 && block.list == nil {
				block = verdict{list: l, rule: s, kind: k}
			}
		}
		i := nextLabel(s)
		if i < 0 {
			return block
		}
		s = s[i:]
		want = treeKinds | belowKinds // a parent of the query name
	}
}

// nextLabel returns the index in name of the label after the first, or
// -1 when name has one label. A dot escaped with a backslash (a\.b.com)
// is part of its label, not a separator.
func nextLabel(name string) int {
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++
		case '.':
			if i+1 < len(name) {
				return i + 1
			}
			return -1
		}
	}
	return -1
}

// lowerASCII returns name in lower case. It allocates only when name has
// upper case (DNS 0x20 clients mix it in on purpose).
func lowerASCII(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}
