package hosts

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// stamp tells a file's versions apart without reading it: a rewrite
// changes its modification time or size, a replacement by rename its
// inode (how dnsmasq and editors write).
type stamp struct {
	exists bool
	mod    time.Time
	size   int64
	ino    uint64
}

func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{exists: true, mod: fi.ModTime(), size: fi.Size(), ino: inode(fi)}
}

// Files is a set of hosts and lease files, read together. It is not
// safe for concurrent use: one goroutine loads and checks it.
type Files struct {
	paths  []string
	domain string
	stamps []stamp // as of the last Load
}

// NewFiles returns the files at paths; domain is Parse's.
func NewFiles(domain string, paths ...string) *Files {
	return &Files{paths: paths, domain: domain, stamps: make([]stamp, len(paths))}
}

// Load reads every file and returns their entries together, in file
// order, and the lines skipped. A file that cannot be read is one
// Problem; it is read again once it changes (appears, say).
func (f *Files) Load(now time.Time) ([]Entry, []Problem) {
	var entries []Entry
	var problems []Problem
	for i, path := range f.paths {
		// The stamp is taken before reading: a write during the read is
		// seen as a change next time, never missed.
		f.stamps[i] = stampOf(path)
		file, err := os.Open(path)
		if err != nil {
			msg := err.Error()
			if errors.Is(err, fs.ErrNotExist) {
				msg = "no such file (yet): read once it appears"
			}
			problems = append(problems, Problem{File: path, Msg: msg})
			continue
		}
		e, p := Parse(file, path, f.domain, now)
		file.Close()
		entries = append(entries, e...)
		problems = append(problems, p...)
	}
	return entries, problems
}

// Changed reports whether a file was written, replaced, created or
// removed since the last Load. It reads no file, only their metadata,
// so it is cheap enough to ask every few seconds.
func (f *Files) Changed() bool {
	for i, path := range f.paths {
		if stampOf(path) != f.stamps[i] {
			return true
		}
	}
	return false
}
