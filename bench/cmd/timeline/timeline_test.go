package main

import (
	"fmt"
	"strings"
	"testing"
)

// trace builds perf script lines: server pid 100, dnsperf 200/201,
// dotresponder 300/301. Times are in microseconds from 1 s.
type trace struct{ b strings.Builder }

func (tr *trace) add(comm string, pid, tid int, us float64, event, text string) {
	fmt.Fprintf(&tr.b, "%16s %5d/%-5d [001] %12.6f: %24s: %s\n", comm, pid, tid, 1+us/1e6, event, text)
}

func (tr *trace) syscall(comm string, pid, tid int, from, to float64, nr, fd int, ret int64, woken ...string) {
	tr.add(comm, pid, tid, from, "raw_syscalls:sys_enter", fmt.Sprintf("NR %d (%x, 7f00, 80, 0, 0, 0)", nr, fd))
	for _, w := range woken {
		tr.add(comm, pid, tid, from+1, "sched:sched_wakeup", w)
	}
	tr.add(comm, pid, tid, to, "raw_syscalls:sys_exit", fmt.Sprintf("NR %d = %d", nr, ret))
}

const (
	wakeResponder = "comm=dotresponder pid=301 prio=120 target_cpu=000"
	wakeClient    = "comm=dnsperf pid=201 prio=120 target_cpu=000"
)

// onePeriod writes one query's way through a server (UDP socket fd 6,
// upstream fd 9) starting at us; answered says whether the client reads
// its answer.
func (tr *trace) onePeriod(us float64, answered bool) {
	tr.syscall("dnsperf", 200, 201, us, us+10, 44, 5, 37)
	tr.syscall("dnsperf", 200, 201, us+12, us+14, 1, 3, 41) // dnsperf's own pipe: not a query
	tr.add("swapper", 0, 0, us+30, "sched:sched_switch",
		"prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=A next_pid=100 next_prio=120")
	tr.syscall("A", 100, 100, us+32, us+35, 299, 6, 1)
	tr.syscall("A", 100, 100, us+50, us+70, 1, 9, 120, wakeResponder)
	tr.syscall("dotresponder", 300, 301, us+80, us+90, 1, 4, 100)
	tr.syscall("A", 100, 100, us+120, us+125, 0, 9, 100)
	tr.syscall("A", 100, 100, us+126, us+127, 0, 9, -11)
	tr.syscall("A", 100, 100, us+140, us+160, 46, 6, 53, wakeClient)
	if answered {
		tr.syscall("dnsperf", 200, 201, us+170, us+175, 45, 5, 53)
	}
	tr.syscall("dnsperf", 200, 201, us+180, us+181, 45, 5, -11)
}

// events parses tr as the server with process ID 100 sees it.
func (tr *trace) events(t *testing.T) ([]event, *roles) {
	t.Helper()
	evs, err := parse(strings.NewReader(tr.b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return evs, newRoles(evs, 100, "dnsperf", "dotresponder")
}

func TestStages(t *testing.T) {
	var tr trace
	tr.b.WriteString("# perf's header line, skipped\n")
	tr.onePeriod(0, true)
	tr.onePeriod(2000, true)
	evs, r := tr.events(t)
	fds := learnFDs(evs, r)
	if fds[6] != clientFD || fds[9] != upstreamFD {
		t.Fatalf("descriptors learnt: %v, want 6 client and 9 upstream", fds)
	}
	ps, seen := periods(evs, r, fds)
	if len(ps) != 2 || seen != 2 {
		t.Fatalf("%d periods used of %d, want 2 of 2", len(ps), seen)
	}
	want := []float64{30, 40, 55, 35, 15, 175, 175}
	for i, s := range stages {
		q := quartiles(values(ps, s))
		if d := q[1] - want[i]; d < -0.01 || d > 0.01 {
			t.Errorf("%s: median %.2f µs, want %.0f", s.name, q[1], want[i])
		}
	}
	if slow := slowest(ps); len(slow) != 1 {
		t.Errorf("slowest of 2 periods: %d, want 1", len(slow))
	}
	wakes := idleExits(evs, seen)
	if got, want := oneLine(ps, seen, wakes), "periods 2/2 µs: 30.0 40.0 55.0 35.0 15.0 175.0 175.0 0.00 1.00"; got != want {
		t.Errorf("oneLine = %q, want %q", got, want)
	}
}

// TestUnansweredPeriodLeftOut: a query never answered keeps its period
// open, and a send soon after joins it: the merged period is not used.
// One maxPeriod later a send starts a period of its own. Nor is a
// server other than the one asked for measured.
func TestUnansweredPeriodLeftOut(t *testing.T) {
	var tr trace
	tr.onePeriod(0, false)
	tr.onePeriod(2000, true)
	tr.onePeriod(maxPeriod*1e6+1000, true)
	evs, r := tr.events(t)
	if ps, seen := periods(evs, r, learnFDs(evs, r)); len(ps) != 1 || seen != 2 {
		t.Errorf("%d periods used of %d, want 1 of 2", len(ps), seen)
	}
	other := newRoles(evs, 999, "dnsperf", "dotresponder")
	if ps, _ := periods(evs, other, learnFDs(evs, other)); len(ps) != 0 {
		t.Errorf("another server's trace: %d periods used, want 0", len(ps))
	}
	if got := table(nil, 3, nil); got != "periods used: 0 of 3\n" {
		t.Errorf("table of nothing = %q", got)
	}
}

// TestDescriptorLearntFromReads: a descriptor whose writes never wake
// anyone (its reader is always awake already) is learnt from the reads
// that follow a wakeup by the responder or the load generator.
func TestDescriptorLearntFromReads(t *testing.T) {
	var tr trace
	tr.syscall("A", 100, 100, 0, 10, 1, 10, 120) // to the responder, awake: wakes nobody
	tr.syscall("dotresponder", 300, 301, 20, 30, 1, 4, 100, "comm=A pid=100 prio=120 target_cpu=001")
	tr.syscall("A", 100, 100, 40, 45, 0, 10, 100)
	tr.syscall("dnsperf", 200, 201, 50, 55, 44, 5, 37, "comm=A pid=100 prio=120 target_cpu=001")
	tr.syscall("A", 100, 100, 60, 65, 299, 6, 1)
	evs, r := tr.events(t)
	if fds := learnFDs(evs, r); fds[10] != upstreamFD || fds[6] != clientFD {
		t.Errorf("descriptors learnt: %v, want 10 upstream and 6 client", fds)
	}
}

// TestPerfFilter: the filter bench/ab records with keeps every system
// call the stages read, the clients' included, and names each once.
func TestPerfFilter(t *testing.T) {
	f := perfFilter()
	for _, set := range []map[int]bool{sends, recvs, clientSends, clientRecvs} {
		for nr := range set {
			if n := strings.Count("||"+f+"||", fmt.Sprintf("||id==%d||", nr)); n != 1 {
				t.Errorf("filter %q names system call %d %d times, want once", f, nr, n)
			}
		}
	}
}
