package buildtime

import (
	"testing"
	"time"
)

func TestLatest(t *testing.T) {
	floor := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		times []string
		want  time.Time
	}{
		{"floor only", nil, floor},
		{"later commit", []string{"2027-01-02T03:04:05Z"}, time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)},
		{"earlier commit", []string{"2020-01-01T00:00:00Z"}, floor},
		{"garbage", []string{"yesterday", ""}, floor},
		{"latest wins", []string{"2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"}, time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := latest(floor, tc.times...); !got.Equal(tc.want) {
				t.Fatalf("latest = %v, want %v", got, tc.want)
			}
		})
	}
	if Time().Before(floor) {
		t.Fatal("Time is before the floor")
	}
}
