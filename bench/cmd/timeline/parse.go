package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// event is one line of `perf script -F comm,pid,tid,cpu,time,event,trace`,
// a system call's exit joined to its entry. parse keeps the exits of the
// calls whose entries it saw, wakeups and switches.
type event struct {
	comm     string
	pid, tid int
	cpu      int
	t        float64 // seconds
	name     string  // the tracepoint's name after its subsystem: sys_exit, sched_wakeup, ...
	nr       int     // sys_exit: the system call's number; sched_wakeup: that of the waker's call under way, or -1
	fd       int     // the first argument of that call
	start    float64 // sys_exit: when the call was entered
	ret      int64   // sys_exit: the call's return value
	woken    int     // sched_wakeup: the task woken (its tid)
	nextPID  int     // sched_switch: the task switched to (its tid)
	fromIdle bool    // sched_switch: from the CPU's idle task
}

// The x86-64 system calls that move a DNS message, by the direction the
// server's bytes go.
var (
	sends = map[int]bool{1: true, 20: true, 44: true, 46: true, 307: true} // write writev sendto sendmsg sendmmsg
	recvs = map[int]bool{0: true, 19: true, 45: true, 47: true, 299: true} // read readv recvfrom recvmsg recvmmsg
)

var (
	lineRE   = regexp.MustCompile(`^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+([\w-]+):(\w+):\s*(.*)$`)
	nrRE     = regexp.MustCompile(`NR (\d+)`)
	argRE    = regexp.MustCompile(`NR \d+ \(([0-9a-f]+)`)
	retRE    = regexp.MustCompile(`= (-?\d+)`)
	pidRE    = regexp.MustCompile(`pid=(\d+)`)
	nextPIDr = regexp.MustCompile(`next_pid=(\d+)`)
)

// parse reads perf script's lines; lines of another shape (perf's
// headers, a lost-events note) are skipped. Each system call's entry is
// joined to its exit, and to the wakeups the call makes, here once.
func parse(r io.Reader) ([]event, error) {
	var evs []event
	open := map[int]event{} // tid -> the entry of its system call under way
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		e := event{comm: m[1], name: m[7], nr: -1, fd: -1}
		e.pid, _ = strconv.Atoi(m[2])
		e.tid, _ = strconv.Atoi(m[3])
		e.cpu, _ = strconv.Atoi(m[4])
		e.t, _ = strconv.ParseFloat(m[5], 64)
		trace := m[8]
		switch e.name {
		case "sys_enter":
			if n := nrRE.FindStringSubmatch(trace); n != nil {
				e.nr, _ = strconv.Atoi(n[1])
			}
			if a := argRE.FindStringSubmatch(trace); a != nil {
				fd, _ := strconv.ParseInt(a[1], 16, 64)
				e.fd = int(fd)
			}
			open[e.tid] = e
			continue
		case "sys_exit":
			in, ok := open[e.tid]
			delete(open, e.tid)
			n := nrRE.FindStringSubmatch(trace)
			if !ok || n == nil || strconv.Itoa(in.nr) != n[1] {
				continue // entered before the trace began
			}
			e.nr, e.fd, e.start = in.nr, in.fd, in.t
			if v := retRE.FindStringSubmatch(trace); v != nil {
				e.ret, _ = strconv.ParseInt(v[1], 10, 64)
			}
		case "sched_wakeup":
			if p := pidRE.FindStringSubmatch(trace); p != nil {
				e.woken, _ = strconv.Atoi(p[1])
			}
			if in, ok := open[e.tid]; ok {
				e.nr, e.fd = in.nr, in.fd
			}
		case "sched_switch":
			if p := nextPIDr.FindStringSubmatch(trace); p != nil {
				e.nextPID, _ = strconv.Atoi(p[1])
			}
			e.fromIdle = strings.Contains(trace, " prev_pid=0 ")
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading perf script output: %w", err)
	}
	return evs, nil
}

// roles says whose a task is: the server's (by process ID), the load
// generator's or the upstream responder's (by command name prefix).
type roles struct {
	client     string
	responder  string
	tids       map[int]string // every task seen, by thread ID: its comm
	serverTIDs map[int]bool
}

func newRoles(evs []event, server int, client, responder string) *roles {
	r := &roles{client: client, responder: responder,
		tids: map[int]string{}, serverTIDs: map[int]bool{}}
	for _, e := range evs {
		r.tids[e.tid] = e.comm
		if e.pid == server {
			r.serverTIDs[e.tid] = true
		}
	}
	return r
}

func (r *roles) isServer(tid int) bool { return r.serverTIDs[tid] }
func (r *roles) isClient(tid int) bool {
	return !r.serverTIDs[tid] && strings.HasPrefix(r.tids[tid], r.client)
}
func (r *roles) isResponder(tid int) bool {
	return !r.serverTIDs[tid] && strings.HasPrefix(r.tids[tid], r.responder)
}
