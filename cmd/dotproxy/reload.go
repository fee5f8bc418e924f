package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/proxy"
	"github.com/dotproxy/dotproxy/sdnotify"
)

// watchInterval is how often a watched config file is checked for a
// change: polling needs no dependency, and a reload two seconds late is
// soon enough for a file a person edits.
const watchInterval = 2 * time.Second

// reloads reloads p from source on each SIGHUP that hup delivers (one
// sent during start-up included) and, when the configuration says watch,
// when the file changes, until ctx ends, telling sd (systemd) when each
// reload begins and ends. A configuration that does not load or build is
// logged and the running one kept.
func reloads(ctx context.Context, hup <-chan os.Signal, p *proxy.Proxy, source string, watch bool, sd *sdnotify.Notifier, log *slog.Logger) {
	file := source
	if _, err := os.Stat(file); err != nil {
		file = "" // the embedded default: nothing to read again
	}
	var tick <-chan time.Time
	if watch && file != "" {
		t := time.NewTicker(watchInterval)
		defer t.Stop()
		tick = t.C
	}
	last := stamp(file)
	for {
		var why string
		select {
		case <-ctx.Done():
			return
		case <-hup:
			why = "SIGHUP"
		case <-tick:
			s := stamp(file)
			if s == last {
				continue
			}
			last, why = s, "config file changed"
		}
		sd.Reloading()
		reload(p, file, why, log)
		sd.Ready("serving") // the old configuration, if the new one failed
	}
}

func reload(p *proxy.Proxy, file, why string, log *slog.Logger) {
	log.Info("reloading configuration", "reason", why, "config", file)
	cfg, _, err := config.Load(file)
	if err == nil {
		err = config.ApplyEnv(cfg, os.Getenv)
	}
	if err == nil {
		err = p.Reload(cfg)
	}
	if err != nil {
		log.Error("configuration not reloaded; the running one stays", "err", err)
	}
}

// fileStamp is what tells a changed file: its modification time and size.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(file string) fileStamp {
	if file == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(file)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}
