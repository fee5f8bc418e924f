package admin

import (
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{formatCount(0), "0"},
		{formatCount(999), "999"},
		{formatCount(1000), "1,000"},
		{formatCount(1234567), "1,234,567"},
		{formatRate(0), "0/s"},
		{formatRate(0.0004), "0.0/min"},
		{formatRate(0.04), "2.4/min"},
		{formatRate(0.5), "30/min"},
		{formatRate(1), "1.0/s"},
		{formatRate(3.25), "3.2/s"},
		{formatRate(9.94), "9.9/s"},
		{formatRate(9.96), "10/s"},
		{formatRate(12.5), "13/s"},
		{formatRate(1499.6), "1,500/s"},
		{formatPercent(0, 0), dash},
		{formatPercent(0, 10), "0.0%"},
		{formatPercent(1, 3), "33.3%"},
		{formatPercent(1, 10000), "<0.1%"},
		{formatPercent(10, 10), "100.0%"},
		{formatRTT(0), dash},
		{formatRTT(4560 * time.Microsecond), "4.6 ms"},
		{formatRTT(9960 * time.Microsecond), "10 ms"},
		{formatRTT(12500 * time.Microsecond), "13 ms"},
		{formatRTT(1500 * time.Millisecond), "1,500 ms"},
		{formatSpan(-time.Second), "0s"},
		{formatSpan(42 * time.Second), "42s"},
		{formatSpan(5*time.Minute + 3*time.Second), "5m 3s"},
		{formatSpan(2*time.Hour + 5*time.Minute + 59*time.Second), "2h 5m"},
		{formatSpan(76 * time.Hour), "3d 4h"},
		{formatAgo(-time.Second), "just now"},
		{formatAgo(12 * time.Second), "12 s ago"},
		{formatAgo(3*time.Minute + 59*time.Second), "3 min ago"},
		{formatAgo(5 * time.Hour), "5 h ago"},
		{formatAgo(49 * time.Hour), "2 d ago"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}
