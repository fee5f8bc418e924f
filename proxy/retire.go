package proxy

import (
	"sync"
	"time"

	"github.com/dotproxy/dotproxy/cache"
	"github.com/dotproxy/dotproxy/filter"
	"github.com/dotproxy/dotproxy/upstream"
)

// parts counts, for each shared part (an upstream, the cache, the
// filter, the forwarding rules' servers), the generations that hold it, and closes a part when the last
// of them lets it go. A reload hands unchanged parts from one generation
// to the next, and an older generation may still be draining on a part
// that the newest has dropped: only a count says when nobody uses it.
type parts struct {
	mu    sync.Mutex
	users map[any]int
}

// hold counts g as a user of each of its parts.
func (ps *parts) hold(g *generation) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.users == nil {
		ps.users = make(map[any]int)
	}
	for _, p := range g.parts() {
		ps.users[p]++
	}
}

// release counts g out of its parts and closes those it was the last
// user of, all at once. Closing a part is bounded: an upstream gives its
// connections' close_notify a second, a filter abandons its downloads.
func (ps *parts) release(g *generation) {
	var unused []any
	ps.mu.Lock()
	for _, p := range g.parts() {
		ps.users[p]--
		if ps.users[p] <= 0 {
			delete(ps.users, p)
			unused = append(unused, p)
		}
	}
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range unused {
		wg.Go(func() {
			switch p := p.(type) {
			case *upstream.Upstream:
				p.Close()
			case *cache.Cache:
				p.Close()
			case *filter.Filter:
				p.Stop()
			case *forwarding:
				p.close()
			}
		})
	}
	wg.Wait()
}

// parts lists g's shared parts, each once.
func (g *generation) parts() []any {
	ps := make([]any, 0, len(g.ups)+3)
	for _, u := range g.ups {
		ps = append(ps, u)
	}
	if g.cache != nil {
		ps = append(ps, g.cache)
	}
	if g.filter != nil {
		ps = append(ps, g.filter)
	}
	if g.fwd != nil {
		ps = append(ps, g.fwd)
	}
	return ps
}

// retireMargin is what a retired generation's last queries get beyond
// their deadline to unwind (a SERVFAIL to pack and send) before its
// parts are closed under them.
const retireMargin = time.Second

// retire stops new queries from starting in g, and once the ones it is
// resolving have finished (or wait has passed, or stop is closed: the
// listener has shut down and nobody reads their answers), releases g's
// parts. g's checker must already be stopped. It waits on g's last query
// to end, not by polling.
func (g *generation) retire(ps *parts, wait time.Duration, stop <-chan struct{}) {
	g.retired.Store(true)
	if g.active.Load() == 0 {
		g.drain.Do(func() { close(g.drained) })
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-g.drained:
	case <-t.C:
	case <-stop:
	}
	ps.release(g)
}

// leave ends one query's stay in g; the last one out of a retired
// generation tells retire.
func (g *generation) leave() {
	if g.active.Add(-1) == 0 && g.retired.Load() {
		g.drain.Do(func() { close(g.drained) })
	}
}
