// Package health owns the background checker that probes every upstream
// on its own schedule, decides when one is down or back up, and tells it
// so through a narrow method. It does not choose upstreams (the selector
// reads the verdicts) and never touches another package's fields.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Target is what the checker needs of an upstream.
type Target interface {
	Name() string
	// Probe sends one probe query and returns the answer. Unlike a real
	// query's, its failure is the checker's to judge (Fall): the target
	// must not act on it alone.
	Probe(ctx context.Context, q *dns.Msg) (*dns.Msg, error)
	// SetHealthy receives the checker's verdict.
	SetHealthy(up bool)
	// Healthy is the verdict the target holds now: a checker that takes
	// over a target from another (on reload) starts from it.
	Healthy() bool
	// Failed signals a failed real query: the next probe comes sooner.
	Failed() <-chan struct{}
}

// Defaults for Options' zero values.
const (
	defaultInterval     = 10 * time.Second
	defaultDownInterval = 2 * time.Second
	defaultTimeout      = 1500 * time.Millisecond
	defaultFall         = 2
	defaultRise         = 1
	// minProbeGap is the least time between two probes of one upstream,
	// so a burst of failing real queries costs one probe, not a storm.
	minProbeGap = 500 * time.Millisecond
)

// Options configures a Checker. Zero values take the defaults.
type Options struct {
	Interval     time.Duration // between probes of a healthy upstream, default 10s
	DownInterval time.Duration // between probes of a down upstream, default 2s
	Timeout      time.Duration // per probe, default 1.5s
	Fall         int           // failures in a row that mark an upstream down, default 2
	Rise         int           // successes in a row that mark it up, default 1
	ProbeName    string        // default "."
	ProbeType    uint16        // default NS
	Logger       *slog.Logger
	// OnChange, if set, is called after each transition.
	OnChange func(name string, up bool, reason string)
}

// Checker probes a set of targets until stopped.
type Checker struct {
	opts    Options
	log     *slog.Logger
	targets []Target
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu    sync.Mutex
	state map[string]*State
}

// State is one target's health as the checker last saw it.
type State struct {
	Up        bool
	Fails     int // consecutive failed probes
	Successes int // consecutive good probes
	LastProbe time.Time
	LastRTT   time.Duration
	LastError string
}

// New builds a Checker; Start runs it.
func New(opts Options, targets ...Target) *Checker {
	if opts.Interval <= 0 {
		opts.Interval = defaultInterval
	}
	if opts.DownInterval <= 0 {
		opts.DownInterval = defaultDownInterval
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.Fall <= 0 {
		opts.Fall = defaultFall
	}
	if opts.Rise <= 0 {
		opts.Rise = defaultRise
	}
	if opts.ProbeName == "" {
		opts.ProbeName = "."
	}
	if opts.ProbeType == 0 {
		opts.ProbeType = dns.TypeNS
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Checker{opts: opts, log: opts.Logger, targets: targets, state: map[string]*State{}}
	for _, t := range targets {
		c.state[t.Name()] = &State{Up: t.Healthy()}
	}
	return c
}

// Start begins probing every target at once and then on its schedule.
func (c *Checker) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	for _, t := range c.targets {
		c.wg.Add(1)
		go c.run(ctx, t)
	}
}

// Stop ends probing and waits for probes under way.
func (c *Checker) Stop() {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
}

// State returns a copy of the named target's state.
func (c *Checker) State(name string) (State, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.state[name]
	if !ok {
		return State{}, false
	}
	return *s, true
}

// run is one target's probe loop: one probe at a time, so at most one
// is in flight per target.
func (c *Checker) run(ctx context.Context, t Target) {
	defer c.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last, due time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Failed():
			if !c.up(t) {
				continue // probed every DownInterval anyway
			}
			// Probe soon, but no sooner than minProbeGap after the last.
			soon := last.Add(minProbeGap)
			if soon.Before(due) {
				due = soon
				timer.Reset(time.Until(soon))
			}
			continue
		case <-timer.C:
		}
		last = time.Now()
		up := c.probe(ctx, t)
		if ctx.Err() != nil {
			return
		}
		// A real query that failed while the probe ran is not news:
		// the probe has just judged the target.
		select {
		case <-t.Failed():
		default:
		}
		next := c.opts.Interval
		if !up {
			next = c.opts.DownInterval
		}
		due = time.Now().Add(next)
		timer.Reset(next)
	}
}

func (c *Checker) up(t Target) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state[t.Name()].Up
}

// probe sends one probe, updates the target's state and returns whether
// the target is up afterwards.
func (c *Checker) probe(ctx context.Context, t Target) bool {
	q := new(dns.Msg)
	q.SetQuestion(c.opts.ProbeName, c.opts.ProbeType)
	q.SetEdns0(dns.DefaultMsgSize, false)
	pctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	start := time.Now()
	r, err := t.Probe(pctx, q)
	cancel()
	rtt := time.Since(start)
	if err == nil && r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		err = fmt.Errorf("probe answered %s", dns.RcodeToString[r.Rcode])
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return true // stopping; no verdict
	}
	return c.record(t, rtt, err)
}

func (c *Checker) record(t Target, rtt time.Duration, err error) bool {
	c.mu.Lock()
	s := c.state[t.Name()]
	s.LastProbe = time.Now()
	was := s.Up
	var reason string
	if err == nil {
		s.LastRTT, s.LastError = rtt, ""
		s.Fails = 0
		s.Successes++
		if !s.Up && s.Successes >= c.opts.Rise {
			s.Up = true
			reason = fmt.Sprintf("%d probe(s) answered, last in %s", s.Successes, rtt.Round(time.Microsecond))
		}
	} else {
		s.LastError = err.Error()
		s.Successes = 0
		s.Fails++
		if s.Up && s.Fails >= c.opts.Fall {
			s.Up = false
			reason = fmt.Sprintf("%d probe(s) failed, last: %v", s.Fails, err)
		}
	}
	up, fails := s.Up, s.Fails
	c.mu.Unlock()

	if up != was {
		state := "down"
		if up {
			state = "up"
		}
		c.log.Info("upstream "+state, "upstream", t.Name(), "reason", reason)
		if c.opts.OnChange != nil {
			c.opts.OnChange(t.Name(), up, reason)
		}
		t.SetHealthy(up)
	} else if err != nil {
		c.log.Debug("probe failed", "upstream", t.Name(), "err", err, "fails", fails)
	}
	return up
}
