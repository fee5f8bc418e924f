// Command profile runs dotproxy's proxy package, as cmd/dotproxy does,
// under the Go profilers, for the benchmark: a CPU profile from start to
// exit, an allocation profile written at exit, and, on SIGUSR1, one line
// of memory statistics after a full GC (live heap, allocations so far),
// from which the benchmark derives allocations per query and memory per
// cached entry. It adds nothing to the product: the binary has no pprof
// endpoint.
//
//	profile -config bench.yaml -cpuprofile cpu.prof -memprofile mem.prof
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

	"github.com/dotproxy/dotproxy/config"
	"github.com/dotproxy/dotproxy/internal/heapfloor"
	"github.com/dotproxy/dotproxy/proxy"
)

// shutdownGrace is cmd/dotproxy's: queries in flight get this long.
const shutdownGrace = 5 * time.Second

func main() {
	path := flag.String("config", "", "dotproxy configuration file")
	cpuFile := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	memFile := flag.String("memprofile", "", "write an allocation profile here at exit")
	traceFile := flag.String("trace", "", "write an execution trace of the whole run here (go tool trace)")
	flag.Parse()
	log.SetPrefix("profile: ")
	log.SetFlags(0)

	cfg, _, err := config.Load(*path)
	if err != nil {
		log.Fatalf("config: %v", err)
	}
	if os.Getenv("GOGC") == "" { // as cmd/dotproxy does
		defer heapfloor.Start(heapfloor.Default)()
	}
	if *cpuFile != "" {
		f, err := os.Create(*cpuFile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			log.Fatal(err)
		}
		if err := trace.Start(f); err != nil {
			log.Fatal(err)
		}
		defer trace.Stop()
	}
	p, err := proxy.New(cfg, "bench-profile", proxy.NewLogger(os.Stderr, cfg.Log))
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	for s := range sig {
		if s == syscall.SIGUSR1 {
			printMemStats()
			continue
		}
		break
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	p.Shutdown(ctx)
	if *cpuFile != "" {
		pprof.StopCPUProfile()
	}
	if *memFile != "" {
		f, err := os.Create(*memFile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			log.Fatal(err)
		}
		f.Close()
	}
}

// printMemStats writes one line of key=value memory statistics to
// standard output after a full collection, so heap_alloc is the live heap.
func printMemStats() {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Printf("memstats mallocs=%d total_alloc=%d heap_alloc=%d heap_inuse=%d sys=%d num_gc=%d goroutines=%d\n",
		m.Mallocs, m.TotalAlloc, m.HeapAlloc, m.HeapInuse, m.Sys, m.NumGC, runtime.NumGoroutine())
}
