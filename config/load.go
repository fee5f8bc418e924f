package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/hashicorp/go-multierror"
)

// defaultPath is the file Load reads when given no path. It is a variable
// so that tests can point it into a temporary directory.
var defaultPath = "/etc/dotproxy/config.yaml"

// Load reads and parses the configuration file at path and returns it with
// the name of its source. With path "", it reads /etc/dotproxy/config.yaml
// if that file exists and otherwise returns Default() with the source
// "embedded default". A file that exists but cannot be read is an error,
// not a reason to fall back: the operator meant it to be used; so is one
// over maxFileSize, read no further than the limit.
func Load(path string) (*Config, string, error) {
	if path == "" {
		path = defaultPath
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return Default(), embeddedSource, nil
		}
	}
	data, err := readFile(path)
	var me *multierror.Error
	if errors.As(err, &me) {
		return nil, path, err // over the size limit: a Problem, as Parse's
	}
	if err != nil {
		return nil, path, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(path, data)
	return c, path, err
}
