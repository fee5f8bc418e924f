package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// useDefaultPath points Load's default path at path for one test.
func useDefaultPath(t *testing.T, path string) {
	old := defaultPath
	defaultPath = path
	t.Cleanup(func() { defaultPath = old })
}

func TestLoadFallsBackToEmbedded(t *testing.T) {
	useDefaultPath(t, filepath.Join(t.TempDir(), "config.yaml"))
	c, source, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if source != "embedded default" {
		t.Errorf("source %q, want %q", source, "embedded default")
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("got %+v, want Default()", c)
	}
}

func TestLoadDefaultPath(t *testing.T) {
	path := writeFile(t, "config.yaml", "policy: ordered\n")
	useDefaultPath(t, path)
	c, source, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if source != path || c.Policy != "ordered" {
		t.Errorf("got source %q, policy %q; want %q, ordered", source, c.Policy, path)
	}
}

// TestLoadUnreadableDefaultPath checks that a default file which exists
// but cannot be read is an error, not a silent fall-back.
func TestLoadUnreadableDefaultPath(t *testing.T) {
	dir := t.TempDir() // a directory: exists, cannot be read as a file
	useDefaultPath(t, dir)
	if c, source, err := Load(""); err == nil || c != nil || source != dir {
		t.Errorf("Load() = %v, %q, %v; want nil, %q, an error", c, source, err, dir)
	}
}

func TestLoadPath(t *testing.T) {
	useDefaultPath(t, writeFile(t, "config.yaml", "policy: random\n")) // must not be read
	path := writeFile(t, "dotproxy.yaml", "policy: round_robin\n")
	c, source, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if source != path || c.Policy != "round_robin" {
		t.Errorf("got source %q, policy %q; want %q, round_robin", source, c.Policy, path)
	}
}

func TestLoadMissingPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	_, _, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v, want one wrapping fs.ErrNotExist", err)
	}
}

func TestLoadInvalidNamesTheFile(t *testing.T) {
	path := writeFile(t, "config.yaml", "policy: fastest\ntimout: 1s\n")
	_, _, err := Load(path)
	if want := path + ":2: timout: unknown key"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if err != nil && strings.Contains(err.Error(), "occurred") {
		t.Errorf("multierror's default format leaked: %v", err)
	}
}
