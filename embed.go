// Package dotproxy holds what the whole program shares and nothing else:
// the built-in default configuration, the repository's config.yaml.
package dotproxy

import _ "embed"

// DefaultConfig is the repository's config.yaml, the configuration used
// when none is given.
//
//go:embed config.yaml
var DefaultConfig []byte
