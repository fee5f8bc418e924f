package filter

import (
	"errors"
	"fmt"
	"strings"
)

// ErrListsPending is Ready's answer while a list that Options.Required
// makes a precondition has no version yet.
var ErrListsPending = errors.New("filter lists not loaded yet")

// Pending returns the shown names (ListName) of the lists that have no
// version yet: at start-up, URL lists with no on-disk copy until their
// first download, and lists whose file could not be read. The filter
// answers as if they were empty meanwhile.
func (f *Filter) Pending() []string {
	var names []string
	for _, l := range f.lists {
		if l.table.Load() == nil {
			names = append(names, l.name)
		}
	}
	return names
}

// Ready reports whether the filter may answer: always, unless
// Options.Required is set and a list is pending, when it returns an error
// wrapping ErrListsPending that names them.
func (f *Filter) Ready() error {
	if !f.required {
		return nil
	}
	if p := f.Pending(); len(p) > 0 {
		return fmt.Errorf("%w: %s", ErrListsPending, strings.Join(p, ", "))
	}
	return nil
}
