package proxy

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/dotproxy/dotproxy/cache"
	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/filter"
	"github.com/dotproxy/dotproxy/resolver"
	"github.com/dotproxy/dotproxy/upstream"
)

// newUpstream builds the upstream of uc under cfg; lookup finds its host
// name's addresses, nil when it has an IP address or no way to look its
// host name up (which upstream.New refuses).
func newUpstream(uc config.Upstream, cfg *config.Config, lookup upstream.Lookup, clock *upstream.Clock, log *slog.Logger) (*upstream.Upstream, error) {
	var roots *x509.CertPool
	if uc.CAFile != "" {
		pem, err := os.ReadFile(uc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: reading ca_file: %w", uc.Name, err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream %s: ca_file %s holds no PEM certificate", uc.Name, uc.CAFile)
		}
	}
	return upstream.New(upstream.Options{
		Name:        uc.Name,
		Transport:   uc.Transport,
		Addr:        uc.Address,
		Host:        uc.Host,
		Port:        uc.Port,
		Lookup:      lookup,
		Path:        uc.Path,
		TLSName:     uc.TLSName,
		RootCAs:     roots,
		SPKIPins:    uc.SPKIPins,
		MaxConns:    cfg.Connections.MaxPerUpstream,
		IdleTimeout: cfg.Connections.IdleTimeout,
		DialTimeout: cfg.Connections.DialTimeout,
		Clock:       clock,
		Logger:      log,
	})
}

// newFilter builds the DNS firewall, taking over prev's loaded lists
// (prev may be nil); its list downloads resolve their host names through
// r, and names names the clients of its groups.
func newFilter(cfg *config.Config, prev *filter.Filter, r resolver.Resolver, names filter.Namer, log *slog.Logger) (*filter.Filter, error) {
	groups := make([]filter.Group, len(cfg.Filter.Groups))
	for i, g := range cfg.Filter.Groups {
		groups[i] = filter.Group{Name: g.Name, Clients: g.Clients, Names: g.Names, Blocklists: g.Blocklists, Allowlists: g.Allowlists}
	}
	f, err := filter.New(filter.Options{
		Blocklists:    cfg.Filter.Blocklists,
		Allowlists:    cfg.Filter.Allowlists,
		BlockResponse: cfg.Filter.BlockResponse,
		Refresh:       cfg.Filter.Refresh,
		CacheDir:      cfg.Filter.CacheDir,
		LocalRecords:  cfg.LocalRecords,
		Forwarded:     forwardedDomains(cfg),
		HostsFiles:    cfg.HostsFiles,
		HostsDomain:   cfg.HostsDomain,
		Groups:        groups,
		Names:         names,
		Required:      cfg.Filter.Required,
		Previous:      prev,
		HTTPClient:    listHTTPClient(r),
		Logger:        log,
	})
	if err != nil {
		return nil, fmt.Errorf("building filter: %w", err)
	}
	return f, nil
}

func newCache(c config.Cache, log *slog.Logger) *cache.Cache {
	return cache.New(cache.Options{
		Size:        c.Size,
		MaxBytes:    c.MaxBytes,
		MinTTL:      c.MinTTL,
		MaxTTL:      c.MaxTTL,
		NegativeTTL: orNegative(c.NegativeTTL),
		ServfailTTL: orNegative(c.ServfailTTL),
		Prefetch:    c.Prefetch,
		ServeStale:  c.ServeStale,
		StaleMaxAge: c.StaleMaxAge,
		Logger:      log,
	})
}

// orNegative maps a configured 0 ("do not cache") to the cache's
// negative value: its zero means "the default".
func orNegative(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
