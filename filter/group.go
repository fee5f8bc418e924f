package filter

import (
	"fmt"
	"net/netip"
	"strings"
)

// Group is a set of clients with lists of their own: the kids' devices
// with more lists, a TV whose apps break when filtered with none. Its
// lists replace the global ones for its clients; to add to them, list
// them again (a list named twice is loaded once). Local records and the
// locally served zones apply to every client.
type Group struct {
	Name    string         // for logs
	Clients []netip.Prefix // the client addresses in the group
	// Names are the client names in the group, any case, trailing dot
	// optional: a client is in it while its address has one of them, so
	// that the group follows a device whose address changes. With a
	// HostsDomain, nas and nas.lan are one name.
	Names      []string
	Blocklists []string
	Allowlists []string
}

// Namer names clients. ClientName is called on every query of a client
// when a group has names, so it must be quick and never wait.
type Namer interface {
	// ClientName returns the name of the client at addr now, lower
	// case without the trailing dot; "" when it has none.
	ClientName(addr netip.Addr) string
}

// nameForms returns the forms of the client name n that name one client:
// n itself, lower case without the trailing dot, and, with the house's
// domain, n without it (kids-tablet.lan → kids-tablet) or a single label
// with it (kids-tablet → kids-tablet.lan), as a lease's name is known by
// both.
func nameForms(n, domain string) []string {
	n = strings.ToLower(strings.TrimSuffix(n, "."))
	forms := []string{n}
	if d := strings.ToLower(strings.Trim(domain, ".")); d != "" {
		if short, ok := strings.CutSuffix(n, "."+d); ok && short != "" {
			forms = append(forms, short)
		} else if !strings.Contains(n, ".") {
			forms = append(forms, n+"."+d)
		}
	}
	return forms
}

// group is a Group built: its networks, and its lists' rules.
type group struct {
	name    string
	clients []netip.Prefix
	rules   ruleSet
}

// addGroups builds opts.Groups into f.groups and f.byName, adding their
// lists to b and what is wrong with them to errs.
func (f *Filter) addGroups(opts Options, b *listSet, errs *[]error) {
	names := make(map[string]bool)
	for i, g := range opts.Groups {
		where := fmt.Sprintf("groups[%d]", i)
		if g.Name == "" || names[g.Name] {
			*errs = append(*errs, fmt.Errorf("%s: name %q: empty or used twice", where, g.Name))
		}
		names[g.Name] = true
		if len(g.Clients) == 0 && len(g.Names) == 0 {
			*errs = append(*errs, fmt.Errorf("%s (%s): no clients", where, g.Name))
		}
		for _, n := range g.Names {
			if n == "" || opts.Names == nil {
				*errs = append(*errs, fmt.Errorf("%s (%s): client name %q: empty, or no Namer to name clients", where, g.Name, n))
				continue
			}
			if f.byName == nil {
				f.byName = make(map[string]int)
			}
			for _, k := range nameForms(n, opts.HostsDomain) {
				if _, ok := f.byName[k]; !ok {
					f.byName[k] = i
				}
			}
			if label := strings.ToLower(strings.TrimSuffix(n, ".")); !strings.Contains(label, ".") {
				if f.byLabel == nil {
					f.byLabel = make(map[string]int)
				}
				if _, ok := f.byLabel[label]; !ok {
					f.byLabel[label] = i
				}
			}
		}
		clients := make([]netip.Prefix, len(g.Clients))
		for j, p := range g.Clients {
			if !p.IsValid() {
				*errs = append(*errs, fmt.Errorf("%s (%s): clients[%d]: not a prefix", where, g.Name, j))
			}
			clients[j] = p.Masked()
		}
		f.groups = append(f.groups, group{g.Name, clients, b.rules(g.Blocklists, g.Allowlists, where+".", errs)})
	}
}

// rulesFor returns the rule set for client (invalid for a query of
// dotproxy's own), and the name of its group ("" for the global lists).
func (f *Filter) rulesFor(client netip.Addr) (ruleSet, string) {
	if i := f.groupOf(client); i >= 0 {
		return f.groups[i].rules, f.groups[i].name
	}
	return f.global, ""
}

// groupOf returns the index in f.groups of client's group (the first
// whose networks or names hold it), or -1 when the global lists apply.
func (f *Filter) groupOf(client netip.Addr) int {
	if !client.IsValid() {
		return -1
	}
	named := -1
	if f.byName != nil {
		name := f.names.ClientName(client)
		if i, ok := f.byName[name]; ok {
			named = i
		} else if label, _, cut := strings.Cut(name, "."); cut {
			if i, ok := f.byLabel[label]; ok {
				named = i
			}
		}
	}
	for i, g := range f.groups {
		if i == named {
			return i
		}
		for _, p := range g.clients {
			if p.Contains(client) {
				return i
			}
		}
	}
	return -1
}
