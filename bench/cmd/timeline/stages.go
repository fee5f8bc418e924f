package main

import "sort"

// The client's own system calls that carry queries and answers: dnsperf
// sends with sendto and reads with recvfrom, and writes elsewhere (a
// pipe of its own) with write.
var (
	clientSends = map[int]bool{44: true, 46: true, 307: true}
	clientRecvs = map[int]bool{45: true, 47: true, 299: true}
)

// fdRole is what a server's descriptor leads to, learnt from whom its
// traffic wakes.
type fdRole uint8

const (
	unknownFD fdRole = iota
	clientFD
	upstreamFD
)

// learnFDs finds the server's client and upstream descriptors from whom
// their traffic wakes: a write on one wakes a task of the load generator
// or of the responder, and a read that follows a wakeup by one of them
// reads what it sent. A descriptor whose writes always find their reader
// awake is still learnt from its reads, and the other way round.
func learnFDs(evs []event, r *roles) map[int]fdRole {
	wokenBy := map[int]fdRole{} // server tid -> who woke it last
	votes := map[int][2]int{}
	vote := func(fd int, role fdRole) {
		v := votes[fd]
		v[role-1]++
		votes[fd] = v
	}
	roleOf := func(tid int) fdRole {
		switch {
		case r.isClient(tid):
			return clientFD
		case r.isResponder(tid):
			return upstreamFD
		}
		return unknownFD
	}
	for _, e := range evs {
		switch {
		case e.name == "sched_wakeup" && r.isServer(e.woken):
			if role := roleOf(e.tid); role != unknownFD {
				wokenBy[e.woken] = role
			}
		case e.name == "sched_wakeup" && r.isServer(e.tid) && sends[e.nr]:
			if role := roleOf(e.woken); role != unknownFD {
				vote(e.fd, role)
			}
		case e.name == "sys_exit" && r.isServer(e.tid) && recvs[e.nr] && e.ret > 0:
			if role := wokenBy[e.tid]; role != unknownFD {
				vote(e.fd, role)
				delete(wokenBy, e.tid)
			}
		}
	}
	fds := map[int]fdRole{}
	for fd, v := range votes {
		switch {
		case v[0] > v[1]:
			fds[fd] = clientFD
		case v[1] > v[0]:
			fds[fd] = upstreamFD
		}
	}
	return fds
}

// period is one burst of queries: from a query sent when none was
// outstanding to the answer that leaves none outstanding. At a fixed
// rate low enough that bursts do not overlap, each is one of the load
// generator's sends (dnsperf's threads send together) and its answers.
type period struct {
	sent, received []float64
	// The first time, after the one before it, that the server ran, wrote
	// to an upstream, read an answer from one and wrote to a client.
	run, upWrite, upRead, answer float64
}

// maxPeriod bounds a period: a query dnsperf never gets an answer to
// would otherwise hold its period open, and every later one with it.
const maxPeriod = 0.05 // seconds; a period at a low rate lasts well under 1 ms

func (p *period) complete() bool {
	return len(p.sent) > 0 && len(p.received) == len(p.sent) && p.answer > 0
}

// periods walks the trace and returns every complete period.
func periods(evs []event, r *roles, fds map[int]fdRole) (done []period, seen int) {
	var cur *period
	outstanding := 0
	for _, e := range evs {
		if e.name == "sched_switch" && cur != nil && cur.run == 0 && r.isServer(e.nextPID) {
			cur.run = e.t
		}
		if e.name != "sys_exit" || e.ret <= 0 {
			continue
		}
		switch {
		case r.isClient(e.tid) && clientSends[e.nr]:
			if cur != nil && e.start-cur.sent[0] > maxPeriod {
				outstanding = 0 // a query lost: give its period up
			}
			if outstanding == 0 {
				seen++
				cur = &period{}
			}
			outstanding++
			cur.sent = append(cur.sent, e.start)
		case r.isClient(e.tid) && clientRecvs[e.nr]:
			if cur == nil || outstanding == 0 {
				continue
			}
			outstanding--
			cur.received = append(cur.received, e.t)
			if outstanding == 0 {
				if cur.complete() {
					done = append(done, *cur)
				}
				cur = nil
			}
		case cur != nil && r.isServer(e.tid):
			role := fds[e.fd]
			if cur.run == 0 {
				cur.run = e.start // already running when the query came
			}
			switch {
			case sends[e.nr] && role == upstreamFD && cur.upWrite == 0:
				cur.upWrite = e.t
			case recvs[e.nr] && role == upstreamFD && cur.upWrite > 0 && cur.upRead == 0:
				cur.upRead = e.t
			case sends[e.nr] && role == clientFD && cur.upRead > 0 && cur.answer == 0:
				cur.answer = e.t
			}
		}
	}
	return done, seen
}

// stage is one span of a period, in microseconds.
type stage struct {
	name string
	of   func(p *period) float64
}

var stages = []stage{
	{"query sent to server running", func(p *period) float64 { return p.run - p.sent[0] }},
	{"server running to upstream write done", func(p *period) float64 { return p.upWrite - p.run }},
	{"upstream write done to answer read", func(p *period) float64 { return p.upRead - p.upWrite }},
	{"answer read to client write done", func(p *period) float64 { return p.answer - p.upRead }},
	{"client write done to client read", func(p *period) float64 { return p.received[0] - p.answer }},
	{"first query sent to first answer read", func(p *period) float64 { return p.received[0] - p.sent[0] }},
	{"latency, mean of the period's queries", func(p *period) float64 {
		var sum float64
		for i := range p.sent {
			sum += p.received[i] - p.sent[i]
		}
		return sum / float64(len(p.sent))
	}},
}

// quartiles returns the 25th, 50th and 75th percentiles of v (nearest
// rank), in microseconds; v is in seconds and is sorted in place.
func quartiles(v []float64) [3]float64 {
	sort.Float64s(v)
	var q [3]float64
	for i, f := range []float64{0.25, 0.5, 0.75} {
		rank := int(f*float64(len(v))+0.999999) - 1
		q[i] = v[max(rank, 0)] * 1e6
	}
	return q
}

// idleExits counts, per CPU, the times it left its idle task for work:
// on a machine whose idle cores halt, each is a wakeup paid for before
// the work runs. It returns them per period seen, CPUs in order.
func idleExits(evs []event, seen int) []float64 {
	counts := map[int]int{}
	last := -1
	for _, e := range evs {
		if e.name == "sched_switch" && e.fromIdle {
			counts[e.cpu]++
			last = max(last, e.cpu)
		}
	}
	per := make([]float64, last+1)
	for cpu := range per {
		per[cpu] = float64(counts[cpu]) / float64(max(seen, 1))
	}
	return per
}
