package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name               string
		live, roots, floor uint64
		base, want         int
	}{
		{"no cycle yet", 0, 0, 24 * mib, 100, 100},
		{"small heap: goal raised to the floor", 4 * mib, 0, 24 * mib, 100, 500},
		{"roots count in the goal", 4 * mib, mib, 24 * mib, 100, 400},
		{"goal at the floor already", 12 * mib, 0, 24 * mib, 100, 100},
		{"roots put the goal above the floor", 11 * mib, 2 * mib, 24 * mib, 100, 100},
		{"goal above the floor", 40 * mib, 0, 24 * mib, 100, 100},
		{"another base above the floor", 6 * mib, 0, 24 * mib, 400, 400},
		{"another base below the floor", 4 * mib, 0, 24 * mib, 200, 500},
		{"tiny heap: the runtime's minimum reaches the floor", 100, 0, 24 * mib, 100, 600},
		{"tiny heap, base higher than that", 100, 0, 24 * mib, 800, 800},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentFor(tt.live, tt.roots, tt.floor, tt.base); got != tt.want {
				t.Errorf("percentFor(%d, %d, %d, %d) = %d, want %d", tt.live, tt.roots, tt.floor, tt.base, got, tt.want)
			}
		})
	}
}

func readUint(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestStartRaisesGoalAndStopRestores runs real cycles: the test's own
// heap is far below a 256 MiB floor, so after a cycle the goal must be
// there; stop must give back the percentage of before.
func TestStartRaisesGoalAndStopRestores(t *testing.T) {
	const floor = 256 << 20
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	stop := Start(floor)
	t.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for readUint("/gc/heap/goal:bytes") < floor {
		if time.Now().After(deadline) {
			t.Fatalf("heap goal %d after 10 s of cycles, want at least %d (GOGC now %d)",
				readUint("/gc/heap/goal:bytes"), floor, readUint(gogcMetric))
		}
		runtime.GC()
		time.Sleep(time.Millisecond) // lets the cleanup goroutine run
	}
	if got := readUint(gogcMetric); got <= 100 {
		t.Errorf("GOGC %d with the goal at the floor, want above 100", got)
	}
	stop()
	if got := readUint(gogcMetric); got != 100 {
		t.Errorf("GOGC %d after stop, want 100 restored", got)
	}
	// A cycle after stop changes nothing.
	runtime.GC()
	runtime.GC()
	if got := readUint(gogcMetric); got != 100 {
		t.Errorf("GOGC %d after stop and two cycles, want 100", got)
	}
}

// TestStartLeavesCollectorOff: with GOGC=off there is no goal to raise.
func TestStartLeavesCollectorOff(t *testing.T) {
	before := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(before) })

	stop := Start(256 << 20)
	runtime.GC()
	stop()
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("GOGC %d after Start and stop with the collector off, want -1 (off)", got)
	}
}
