//go:build dotproxy_testclock

package main

import (
	"os"
	"strings"
	"time"
)

// A test seam, compiled only into test builds (go build -tags
// dotproxy_testclock, as the e2e suite builds the binary); release builds
// have no such knob. DOTPROXY_TEST_CLOCK_FILE names a file which, while
// it exists and holds an RFC 3339 time, is the clock upstream
// certificates are judged by: a router booting with its clock unset,
// without changing the test machine's clock (a static Go binary ignores
// libfaketime, and a time namespace shifts only the monotonic clocks).
func init() {
	if path := os.Getenv("DOTPROXY_TEST_CLOCK_FILE"); path != "" {
		testNow = func() time.Time {
			data, err := os.ReadFile(path)
			if err != nil {
				return time.Now()
			}
			t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(data)))
			if err != nil {
				return time.Now()
			}
			return t
		}
	}
}
