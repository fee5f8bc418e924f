package proxy

import (
	"fmt"
	"reflect"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/ratelimit"
)

// rateLimiter returns the response rate limiter cfg asks for, nil when
// it is off. The one already in use is kept when its options are the
// same, so that a reload does not hand every limited prefix a fresh
// burst.
func (p *Proxy) rateLimiter(cfg *config.Config) (*ratelimit.Limiter, error) {
	opts, on := cfg.RateLimit.LimiterOptions(cfg.Allow)
	if !on {
		p.limiter = nil
		return nil, nil
	}
	if p.limiter != nil && reflect.DeepEqual(opts, p.limiterOpts) {
		return p.limiter, nil
	}
	lim, err := ratelimit.New(opts)
	if err != nil {
		return nil, fmt.Errorf("rate_limit: %w", err)
	}
	p.limiter, p.limiterOpts = lim, opts
	return lim, nil
}
