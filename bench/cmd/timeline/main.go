// Command timeline reads a kernel trace of one fixed-rate run (perf
// record of system calls, scheduler switches and wakeups, all CPUs) and
// prints where a query's time goes, stage by stage: from the load
// generator's send to the server running, to the server's write to its
// upstream, to the upstream's answer read, to the server's write to the
// client and to the client's read. It needs nothing of the server but
// its process ID, so that dotproxy and a peer are measured alike.
//
//	perf script -F comm,pid,tid,cpu,time,event,trace -i perf.data | timeline -pid PID [-line]
//
// The server's client and upstream descriptors are told apart by whom
// their traffic wakes (a write's reader, or the writer whose wakeup a
// read follows): the load generator (-client, dnsperf) or the responder
// (-responder, dotresponder). A period is a burst of queries sent while
// none was outstanding, with their answers; periods that overlap (at
// higher rates) merge, and a period is used only when every stage was
// seen in it. Beside each stage's quartiles it prints its median over
// the slowest periods (where a tail's time goes) and how often each CPU
// left its idle task per period. -line prints the medians on one line,
// for bench/ab -T. System calls are read by their x86-64 numbers;
// -perf-filter prints the raw_syscalls filter that records just those.
package main

import (
	"cmp"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"slices"
	"strings"
)

func main() {
	log.SetPrefix("timeline: ")
	log.SetFlags(0)
	pid := flag.Int("pid", 0, "the server's process ID")
	client := flag.String("client", "dnsperf", "command name prefix of the load generator's threads")
	responder := flag.String("responder", "dotresponder", "command name prefix of the upstream responder's threads")
	line := flag.Bool("line", false, "print the stages' medians on one line")
	filter := flag.Bool("perf-filter", false, "print the perf record filter for the system calls it reads, and exit")
	flag.Parse()
	if *filter {
		fmt.Println(perfFilter())
		return
	}
	if *pid == 0 || flag.NArg() > 0 {
		log.Fatal("usage: perf script -F comm,pid,tid,cpu,time,event,trace | timeline -pid PID [-line]")
	}
	evs, err := parse(os.Stdin)
	if err != nil {
		log.Fatal(err)
	}
	r := newRoles(evs, *pid, *client, *responder)
	ps, seen := periods(evs, r, learnFDs(evs, r))
	wakes := idleExits(evs, seen)
	if *line {
		fmt.Println(oneLine(ps, seen, wakes))
		return
	}
	fmt.Print(table(ps, seen, wakes))
}

// table prints each stage's quartiles and its median over the slowest
// periods, and how often each CPU left its idle task per period.
func table(ps []period, seen int, wakes []float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "periods used: %d of %d\n", len(ps), seen)
	if len(ps) == 0 {
		return b.String()
	}
	slow := slowest(ps)
	fmt.Fprintf(&b, "%-40s %7s %7s %7s %9s  (µs)\n", "stage", "p25", "p50", "p75", "slow p50")
	for _, s := range stages {
		q := quartiles(values(ps, s))
		fmt.Fprintf(&b, "%-40s %7.1f %7.1f %7.1f %9.1f\n", s.name, q[0], q[1], q[2], quartiles(values(slow, s))[1])
	}
	fmt.Fprintf(&b, "(slow: the %d periods of the slowest %d%% by latency, where the tail's time goes)\n", len(slow), slowPercent)
	for cpu, w := range wakes {
		fmt.Fprintf(&b, "CPU %d left its idle task %.2f times a period\n", cpu, w)
	}
	return b.String()
}

// oneLine prints the periods used, each stage's median in stage order
// and then each CPU's idle exits per period: "periods 190/198 µs: 26.0
// 49.0 52.0 34.0 23.0 232.0 238.5 2.98 2.08".
func oneLine(ps []period, seen int, wakes []float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "periods %d/%d µs:", len(ps), seen)
	for _, s := range stages {
		if len(ps) == 0 {
			b.WriteString(" -")
			continue
		}
		fmt.Fprintf(&b, " %.1f", quartiles(values(ps, s))[1])
	}
	for _, w := range wakes {
		fmt.Fprintf(&b, " %.2f", w)
	}
	return b.String()
}

func values(ps []period, s stage) []float64 {
	v := make([]float64, len(ps))
	for i := range ps {
		v[i] = s.of(&ps[i])
	}
	return v
}

// slowPercent is the share of periods, the slowest by latency, whose
// stages table shows apart: at 1,000 qps a p99 is in there.
const slowPercent = 5

// slowest returns the slowest slowPercent of ps (at least one) by the
// mean latency of their queries.
func slowest(ps []period) []period {
	lat := stages[len(stages)-1].of
	sorted := slices.Clone(ps)
	slices.SortFunc(sorted, func(a, b period) int { return cmp.Compare(lat(&b), lat(&a)) })
	return sorted[:max(1, len(sorted)*slowPercent/100)]
}

// perfFilter is the filter expression of perf record's raw_syscalls
// events that keeps the system calls timeline reads, and no others.
func perfFilter() string {
	var ids []string
	for _, nr := range slices.Sorted(maps.Keys(sends)) {
		ids = append(ids, fmt.Sprintf("id==%d", nr))
	}
	for _, nr := range slices.Sorted(maps.Keys(recvs)) {
		ids = append(ids, fmt.Sprintf("id==%d", nr))
	}
	return strings.Join(ids, "||")
}
