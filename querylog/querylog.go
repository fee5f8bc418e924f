// Package querylog writes the query log: one JSON line per answered
// client query (time, client and its name, transport, question, rcode,
// upstream, duration, and whether the cache or the filter answered), to a
// file or standard output, with the client's address optionally
// anonymised.
//
// It owns the line format, the anonymisation and the writing, which
// never holds up a query: the listener hands each event over through a
// bounded queue to one writer goroutine, and when the queue is full the
// event is dropped and counted. It does not decide whether there is a
// query log (the configuration does; off by default, for privacy), nor
// rotate the file.
//
// The file is opened once, for appending. Rotate it with logrotate's
// copytruncate: appends then land at the start of the truncated file.
// There is no reopening on SIGHUP.
package querylog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dotproxy/dotproxy/resolver"
)

// Defaults for Options' zero values.
const (
	// DefaultQueueSize is the default Options.QueueSize: a second of a
	// busy home network's queries, about 200 kB of events.
	DefaultQueueSize = 1024
	// DefaultReportInterval is the default Options.ReportInterval.
	DefaultReportInterval = time.Minute

	// fileMode keeps the log from other users: it names every site a
	// household visits.
	fileMode = 0o640
	// bufferSize batches lines into writes while the queue has more.
	bufferSize = 32 << 10
)

// Options configures a Logger.
type Options struct {
	// Path is the file to append to, created if missing; "-" is
	// standard output. Required.
	Path string
	// Anonymize zeroes the host part of client addresses: IPv4 to its
	// /24, IPv6 to its /56. It also leaves out the client's name, which
	// would tell the host the address no longer does.
	Anonymize bool
	// Names gives the client_name field, looked up by the writer, not
	// on the query's path; nil, or with Anonymize, there is none.
	Names Namer
	// QueueSize is how many queries may wait for the writer before
	// more are dropped.
	QueueSize int
	// ReportInterval is how often the count of dropped queries, if any
	// were, is written to the query log (a {"time","dropped"} line) and
	// logged at Warn.
	ReportInterval time.Duration
	// Logger receives the drop reports and write errors; nil discards.
	Logger *slog.Logger
}

// Namer names clients.
type Namer interface {
	// ClientName returns the name of the client at addr, "" when it
	// has none. It must not wait.
	ClientName(addr netip.Addr) string
}

// Logger is the query log. It implements the listener's Observer; create it
// with New and Close it after the listener has shut down.
type Logger struct {
	opts    Options
	log     *slog.Logger
	out     io.WriteCloser
	queue   chan resolver.QueryEvent
	done    chan struct{} // closed by Close
	stopped chan struct{} // closed when the writer has flushed and closed out

	dropped  atomic.Uint64 // since New
	reported uint64        // dropped as of the last report; the writer's
	err      error         // the first write error; the writer's until stopped

	closeOnce sync.Once
}

// New opens the log and starts its writer.
func New(opts Options) (*Logger, error) {
	if opts.Path == "" {
		return nil, errors.New("querylog: no path")
	}
	var out io.WriteCloser = nopCloser{os.Stdout}
	if opts.Path != "-" {
		f, err := os.OpenFile(opts.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, fileMode)
		if err != nil {
			return nil, fmt.Errorf("querylog: %w", err)
		}
		out = f
	}
	return start(out, opts), nil
}

// start runs a Logger that writes to out.
func start(out io.WriteCloser, opts Options) *Logger {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.ReportInterval <= 0 {
		opts.ReportInterval = DefaultReportInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Logger{
		opts:    opts,
		log:     opts.Logger,
		out:     out,
		queue:   make(chan resolver.QueryEvent, opts.QueueSize),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go l.write()
	return l
}

// ObserveQuery implements the listener's Observer. It never blocks: when the
// writer has fallen QueueSize queries behind, the query is dropped and
// counted. Queries observed after Close are dropped too.
func (l *Logger) ObserveQuery(ev resolver.QueryEvent) {
	select {
	case l.queue <- ev:
	default:
		l.dropped.Add(1)
	}
}

// Dropped counts the queries not logged because the writer fell behind.
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }

// Close writes what is queued, reports any drops not yet reported,
// flushes and closes the file (not standard output). It returns the
// first error writing met. Call it once the listener has stopped
// observing; later calls return the same.
func (l *Logger) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	<-l.stopped
	return l.err
}

// write is the writer goroutine: it writes each queued query, flushing
// whenever the queue runs dry, and reports drops every ReportInterval.
func (l *Logger) write() {
	defer close(l.stopped)
	w := bufio.NewWriterSize(l.out, bufferSize)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	flush := func() {
		if err := w.Flush(); err != nil {
			l.check(err)
			// bufio keeps a write error for good; start afresh, so that
			// logging resumes when the disk has room again.
			w.Reset(l.out)
		}
	}
	tick := time.NewTicker(l.opts.ReportInterval)
	defer tick.Stop()
	for {
		select {
		case ev := <-l.queue:
			l.encode(enc, l.record(&ev))
			if len(l.queue) == 0 {
				flush()
			}
		case <-tick.C:
			l.reportDrops(enc)
			flush()
		case <-l.done:
			for len(l.queue) > 0 {
				ev := <-l.queue
				l.encode(enc, l.record(&ev))
			}
			l.reportDrops(enc)
			flush()
			l.check(l.out.Close())
			return
		}
	}
}

// record is ev's line, named when the options say so.
func (l *Logger) record(ev *resolver.QueryEvent) record {
	r := newRecord(ev, l.opts.Anonymize)
	if l.opts.Names != nil && !l.opts.Anonymize {
		r.ClientName = l.opts.Names.ClientName(ev.Client.Addr().Unmap().WithZone(""))
	}
	return r
}

// reportDrops writes and logs the drops since the last report, if any.
func (l *Logger) reportDrops(enc *json.Encoder) {
	n := l.dropped.Load()
	if n == l.reported {
		return
	}
	since := n - l.reported
	l.reported = n
	l.encode(enc, dropReport{Time: time.Now().UTC().Format(time.RFC3339Nano), Dropped: since})
	l.log.Warn("query log fell behind, queries not logged", "dropped", since, "total", n)
}

func (l *Logger) encode(enc *json.Encoder, v any) {
	l.check(enc.Encode(v))
}

// check keeps the first error and logs it; later ones (a full disk keeps
// failing) are not logged again.
func (l *Logger) check(err error) {
	if err == nil || l.err != nil {
		return
	}
	l.err = err
	l.log.Warn("writing the query log failed; further errors are not logged", "path", l.opts.Path, "err", err)
}

// nopCloser keeps Close from closing standard output.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
