package filter

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// loadLocal gives l, when it has no version yet, the one it can have
// without the network: a file list's file, a URL list's on-disk copy. A
// list left without one is pending, logged at Warn. A list the running
// filter is loading (one a reload took over) is left to that load: the
// reload must not wait on its download.
func (f *Filter) loadLocal(l *list) {
	switch {
	case l.table.Load() != nil:
		return // taken over from the previous filter
	case !l.isURL:
		if tried, err := l.tryLoad(context.Background(), f, false); !tried || err != nil {
			f.log.Warn("list not loaded, filtering without it until it loads", "list", l.name, "err", err)
		}
		return
	case l.cache != "":
		if _, err := os.Stat(l.cache); err == nil {
			tried, err := l.tryLoad(context.Background(), f, true)
			if !tried || err == nil {
				return
			}
			f.log.Warn("on-disk copy of the list is unusable, fetching it", "list", l.name, "err", err)
		}
	}
	f.log.Info("list has no copy yet; downloading it in the background", "list", l.name)
}

// list returns f's list of key, kept in the same cacheDir, or nil; f may
// be nil.
func (f *Filter) list(key listKey, cacheDir string) *list {
	if f == nil {
		return nil
	}
	for _, l := range f.lists {
		if l.source == key.source && l.allow == key.allow &&
			(!l.isURL || l.cache == "" && cacheDir == "" || l.cache == cacheFile(cacheDir, l.source)) {
			return l
		}
	}
	return nil
}
