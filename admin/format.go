package admin

import (
	"fmt"
	"strconv"
	"time"
)

// The figures' text, shared by the server's first render and (mirrored
// rule for rule) by assets/status.js, so the page does not change form
// when the script takes over.

// dash stands for a figure that cannot be known yet (no traffic, no
// measurement).
const dash = "\u2014"

// formatCount writes n with thousands separated by commas.
func formatCount(n uint64) string {
	s := strconv.FormatUint(n, 10)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// formatRate writes a rate: per second from 1/s up (one decimal under
// 10, whole numbers above), per minute below, where a quiet home network
// spends most of its time and "0.0/s" would say nothing.
func formatRate(perSec float64) string {
	switch {
	case perSec <= 0:
		return "0/s"
	case perSec < 1:
		return formatRateUnit(perSec*60, "/min")
	default:
		return formatRateUnit(perSec, "/s")
	}
}

// formatRateUnit writes n with one decimal under 10 and none above (9.96
// rounds up to "10", not "10.0"), then unit.
func formatRateUnit(n float64, unit string) string {
	if n < 9.95 {
		return strconv.FormatFloat(n, 'f', 1, 64) + unit
	}
	return formatCount(uint64(n+0.5)) + unit
}

// formatPercent writes num/den as a percentage with one decimal; a dash
// when den is 0, and "<0.1%" for a share too small to show but not zero.
func formatPercent(num, den uint64) string {
	if den == 0 {
		return dash
	}
	p := percentOf(num, den)
	if num > 0 && p < 0.1 {
		return "<0.1%"
	}
	return strconv.FormatFloat(p, 'f', 1, 64) + "%"
}

// percentOf is num/den in percent, 0 when den is 0.
func percentOf(num, den uint64) float64 {
	if den == 0 {
		return 0
	}
	return 100 * float64(num) / float64(den)
}

// formatRTT writes a round-trip time in milliseconds: one decimal under
// 10 ms, whole milliseconds above; a dash when not measured.
func formatRTT(d time.Duration) string {
	ms := durationMillis(d)
	switch {
	case ms <= 0:
		return dash
	case ms < 9.95:
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	default:
		return formatCount(uint64(ms+0.5)) + " ms"
	}
}

// formatSpan writes a duration in its two largest units: "42s",
// "5m 3s", "2h 5m", "3d 4h".
func formatSpan(d time.Duration) string {
	sec := int64(max(d, 0) / time.Second)
	days, hours, mins, secs := sec/86400, sec/3600%24, sec/60%60, sec%60
	switch {
	case sec < 60:
		return fmt.Sprintf("%ds", secs)
	case sec < 3600:
		return fmt.Sprintf("%dm %ds", mins, secs)
	case sec < 86400:
		return fmt.Sprintf("%dh %dm", hours, mins)
	default:
		return fmt.Sprintf("%dd %dh", days, hours)
	}
}

// formatAgo writes how long ago something happened, coarsely.
func formatAgo(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", d/time.Second)
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", d/time.Minute)
	case d < 24*time.Hour:
		return fmt.Sprintf("%d h ago", d/time.Hour)
	default:
		return fmt.Sprintf("%d d ago", d/(24*time.Hour))
	}
}

// transportText names a server's transport: plain DNS for a forward
// rule's server without TLS, whose status has none.
func transportText(t string) string {
	if t == "" {
		return "plain"
	}
	return t
}
