package proxy

// Ready returns nil once the proxy serves: its listeners are bound and at
// least one upstream is healthy; otherwise what is missing. It is the
// readiness /readyz reports, for a service manager (see sdnotify).
func (p *Proxy) Ready() error { return p.ready() }
