// Command dotproxy is a DNS-over-TLS forwarding proxy: plain DNS in on
// UDP and TCP, DNS-over-TLS out to the healthiest, fastest of several
// resolvers. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/heapfloor"
	"github.com/dotproxy/dotproxy/proxy"
	"github.com/dotproxy/dotproxy/sdnotify"
)

// version is stamped at build time: -ldflags "-X main.version=...".
var version = "dev"

// testNow, when set, is the clock upstream certificates are judged by.
// Only test builds set it (testclock.go); nil means the system clock.
var testNow func() time.Time

// shutdownGrace bounds how long in-flight queries may take to finish
// after SIGTERM.
const shutdownGrace = 5 * time.Second

// Exit statuses.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

func main() { os.Exit(run()) }

func run() int {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		return healthcheck(os.Args[2:])
	}
	fs := flag.NewFlagSet("dotproxy", flag.ContinueOnError)
	path := fs.String("config", "", "config file (default /etc/dotproxy/config.yaml if it exists, else the built-in default)")
	check := fs.Bool("check", false, "validate the configuration and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return exitConfig
	}
	if *showVersion {
		fmt.Println("dotproxy", version)
		return exitOK
	}
	cfg, source, err := config.Load(*path)
	if err == nil {
		err = config.ApplyEnv(cfg, os.Getenv)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "dotproxy: config errors:\n%v\n", err)
		return exitConfig
	}
	if *check {
		fmt.Printf("%s: OK (%d upstreams, %d listen addresses)\n", source, len(cfg.Upstreams), len(cfg.Listen))
		return exitOK
	}

	// Signals are taken before anything is built: a SIGHUP from a
	// supervisor or a file watcher while dotproxy starts must not end it
	// (its default action), and a SIGTERM then stops it cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if os.Getenv("GOGC") == "" { // set: the operator has chosen
		defer heapfloor.Start(heapfloor.Default)()
	}

	log := proxy.NewLogger(os.Stderr, cfg.Log)
	log.Info("starting dotproxy", "version", version, "config", source)
	p, err := proxy.NewWith(cfg, proxy.Options{Version: version, Logger: log, Now: testNow})
	if err != nil {
		log.Error("building proxy", "err", err)
		return exitFail
	}
	if err := p.Start(); err != nil {
		log.Error("starting", "err", err)
		shutdown(p)
		return exitFail
	}

	sd := sdnotify.FromEnv(os.Getenv, log)
	go supervise(ctx, sd, p)
	go reloads(ctx, hup, p, source, cfg.Watch, sd, log)
	<-ctx.Done()
	stop()
	sd.Stopping()
	log.Info("shutting down", "grace", shutdownGrace)
	if err := shutdown(p); err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("stopped")
	return exitOK
}

func shutdown(p *proxy.Proxy) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
