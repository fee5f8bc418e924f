package config

import (
	"testing"
)

// TestParseEmpty checks that a file which configures nothing is an error
// at its last line, not the built-in default: an editor mid-save leaves
// such a file, and the default would swap public resolvers in for the
// operator's.
func TestParseEmpty(t *testing.T) {
	const msg = "the file is empty or holds only comments; write {} for the built-in defaults"
	tests := []struct {
		name, yaml string
		line       string
	}{
		{"empty file", "", "1"},
		{"blank lines", "\n\n\n", "1"},
		{"comments only", "# nothing here\n\n# or here\n", "3"},
		{"empty document", "---\n", "1"},
		{"null document", "# x\n~\n", "2"},
		{"null document and an empty one", "~\n---\n", "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("config.yaml", []byte(tt.yaml))
			if c != nil {
				t.Errorf("got a *Config with the error")
			}
			sameLines(t, problemLines(t, err), []string{"config.yaml:" + tt.line + ": " + msg})
		})
	}
}

// TestLoadEmptyFile checks that Load reports an empty file by name and
// does not fall back on the built-in default, whether the file is given
// or found at the default path.
func TestLoadEmptyFile(t *testing.T) {
	path := writeFile(t, "config.yaml", "# being edited\n")
	useDefaultPath(t, path)
	for _, arg := range []string{path, ""} {
		c, source, err := Load(arg)
		if c != nil || source != path || err == nil {
			t.Errorf("Load(%q) = %v, %q, %v; want nil, %q, an error", arg, c, source, err, path)
		}
	}
}
