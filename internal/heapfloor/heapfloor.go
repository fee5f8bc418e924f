// Package heapfloor keeps the Go collector's heap goal from falling below
// a floor, so that a process with a small live heap and a steady
// allocation rate is not collected several times a second.
//
// With the default GOGC=100 the collector runs each time the heap has
// grown by what was live after the last cycle. A live heap of a few
// megabytes then means a cycle every few hundred milliseconds under a
// modest query rate, and on a single core each cycle's mark phase (its
// worker plus the assists it charges to allocating goroutines) takes the
// core for milliseconds: the queries that arrive meanwhile wait, and
// that is the tail of the latency. A floor under the goal makes cycles
// rarer; each still costs what marking the live heap costs (the pacer
// starts it late whatever the room, so assists remain). Above the floor
// nothing changes: once twice the live heap exceeds it, the goal is the
// default's.
//
// The package owns the tuning only. Whether to tune (an operator who set
// GOGC has chosen) is the caller's decision; GOMEMLIMIT still caps the
// total, whatever the floor.
package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Default is the floor dotproxy runs with unless GOGC is set. A full
// default cache and the upstream connections are a few megabytes live,
// which the default goal would collect several times a second under a
// few thousand queries a second, each mark phase holding up the queries
// of a single-core router for milliseconds. 24 MiB is well inside the
// memory targets (RSS idle under 30 MB, under load under 100 MB;
// bench/README.md); a heap whose live part is above half of it is
// collected as Go's default would.
const Default = 24 << 20

// runtimeMinimum is the runtime's own smallest heap goal at GOGC=100,
// which it scales with GOGC: a percentage above floor/runtimeMinimum*100
// would put the goal above the floor by itself, so that is the most
// percentFor returns.
const runtimeMinimum = 4 << 20

const (
	liveMetric    = "/gc/heap/live:bytes"
	stacksMetric  = "/gc/scan/stack:bytes"
	globalsMetric = "/gc/scan/globals:bytes"
	gogcMetric    = "/gc/gogc:percent"
)

// tuner sets the collector's percentage after every cycle from the live
// heap that cycle found.
type tuner struct {
	floor uint64
	base  int // the GOGC in effect at Start, restored by stop

	mu      sync.Mutex // guards the rest: a cleanup may run as stop is called
	stopped bool
	percent int // the value last set
}

// sentinel is an object that nothing references: its cleanup runs after
// the cycle that finds it unreachable. It holds a pointer so that it is
// not a tiny allocation, whose cleanup may never run.
type sentinel struct{ _ *byte }

// Start keeps the heap goal at or above floor bytes until stop is called,
// which restores the GOGC in effect before. It changes nothing when the
// collector is off (GOGC=off).
func Start(floor uint64) (stop func()) {
	s := []metrics.Sample{{Name: gogcMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return func() {} // a runtime without the metric: leave it be
	}
	base := int(s[0].Value.Uint64()) // GOGC=off reads as -1
	if base <= 0 {
		return func() {}
	}
	t := &tuner{floor: floor, base: base, percent: base}
	t.tune()
	return t.stop
}

// arm attaches a new sentinel, so that the next cycle calls collected.
func (t *tuner) arm() {
	runtime.AddCleanup(new(sentinel), (*tuner).collected, t)
}

// collected runs after a cycle: it sets the percentage for the live heap
// that cycle left, and arms the next.
func (t *tuner) collected() {
	t.mu.Lock()
	stopped := t.stopped
	t.mu.Unlock()
	if !stopped {
		t.tune()
	}
}

// tune sets the percentage for the live heap now known and arms the
// next cycle's sentinel.
func (t *tuner) tune() {
	s := []metrics.Sample{{Name: liveMetric}, {Name: stacksMetric}, {Name: globalsMetric}}
	metrics.Read(s)
	want := percentFor(s[0].Value.Uint64(), s[1].Value.Uint64()+s[2].Value.Uint64(), t.floor, t.base)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if want != t.percent {
		debug.SetGCPercent(want)
		t.percent = want
	}
	t.arm()
}

// stop ends the tuning and restores the percentage in effect at Start.
func (t *tuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	if t.percent != t.base {
		debug.SetGCPercent(t.base)
	}
}

// percentFor returns the GOGC value that puts the heap goal at floor,
// or base when base already puts it higher. The runtime's goal is
// live + (live+roots)*GOGC/100, roots being the stacks and globals the
// last cycle scanned, and never below runtimeMinimum*GOGC/100. An
// unknown live heap (zero: no cycle yet) gets base.
func percentFor(live, roots, floor uint64, base int) int {
	if live == 0 || live+(live+roots)*uint64(base)/100 >= floor {
		return base
	}
	p := (floor - live) * 100 / (live + roots)
	return int(max(min(p, floor*100/runtimeMinimum), uint64(base)))
}
