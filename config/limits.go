package config

import (
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// maxFileSize bounds the configuration file. The largest real one, with
// thousands of local records, is well under a megabyte; decoding costs
// some thirty times the file's size in memory, so the bound keeps a
// mistaken or hostile file from costing more than the proxy itself.
const maxFileSize = 16 << 20

// maxAliasNodes bounds how many YAML nodes aliases may add to the
// document once followed. An alias is walked again each time it is used,
// so a small file whose entries all alias one long list (a "billion
// laughs") would otherwise cost gigabytes; sharing a list of addresses or
// lists between a few entries stays far below the bound.
const maxAliasNodes = 100_000

// readFile reads the configuration file at path, refusing one over
// maxFileSize without reading the rest of it.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, tooLarge(path)
	}
	return data, nil
}

// tooLarge is the problem of a file over maxFileSize.
func tooLarge(file string) error {
	return joinProblems([]*Problem{{File: file,
		Msg: fmt.Sprintf("the file is larger than the limit of %d MiB", maxFileSize>>20)}})
}

// aliasesWithinBound reports whether following every alias under root
// adds at most maxAliasNodes nodes; if not, it records a problem at the
// alias that crosses the bound, naming its key. It costs one pass over
// the nodes as written, whatever they expand to.
func (d *decoder) aliasesWithinBound(root *yaml.Node) bool {
	w := aliasWalk{sizes: map[*yaml.Node]int{}}
	w.walk(root, "")
	if w.over == nil {
		return true
	}
	d.addf(w.over.Line, w.overKey, "aliases expand the configuration by more than %d YAML nodes; write the entries out or share less", maxAliasNodes)
	return false
}

// aliasWalk counts the nodes aliases add, in file order, until the bound.
type aliasWalk struct {
	sizes   map[*yaml.Node]int // expanded size of each node, aliases followed; -1 while being counted
	added   int                // nodes added by the aliases passed so far
	over    *yaml.Node         // the alias that crossed the bound
	overKey string             // its key path
}

// walk visits n as written, with key path p, adding the expanded size of
// each alias it meets.
func (w *aliasWalk) walk(n *yaml.Node, p string) {
	if w.over != nil {
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias != nil {
			w.added += w.size(n.Alias)
		}
		if w.added > maxAliasNodes {
			w.over, w.overKey = n, p
		}
		return
	}
	for i, c := range n.Content {
		switch n.Kind {
		case yaml.MappingNode:
			if i%2 == 1 {
				w.walk(c, join(p, n.Content[i-1].Value))
			}
		case yaml.SequenceNode:
			w.walk(c, fmt.Sprintf("%s[%d]", p, i))
		default:
			w.walk(c, p)
		}
	}
}

// size is the number of nodes n stands for with every alias under it
// followed, memoised so that each node is counted once. An alias to a
// node that holds it (which yaml.v3 refuses anyway) counts as one node.
func (w *aliasWalk) size(n *yaml.Node) int {
	if s, ok := w.sizes[n]; ok {
		return max(s, 1)
	}
	w.sizes[n] = -1
	s := 1
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		s = w.size(n.Alias)
	}
	for _, c := range n.Content {
		s += w.size(c)
		if s > maxAliasNodes {
			break // past the bound: the exact figure does not matter
		}
	}
	w.sizes[n] = s
	return s
}
