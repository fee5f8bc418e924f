package filter

import (
	"net/url"
	"strings"
)

// ListName returns a list's source, a file path or an http(s) URL, in a
// form fit to show: in metric labels, in the query log, on the status
// page. A URL keeps its scheme, host and path and loses its user
// information, query and fragment, where list providers put access
// tokens. A token in the path itself cannot be told apart and stays.
func ListName(source string) string {
	if !strings.Contains(source, "://") {
		return source
	}
	u, err := url.Parse(source)
	if err != nil {
		// Never shown as it is: the parse error would quote it.
		return "(unparsable URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}
