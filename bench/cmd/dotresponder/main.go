// Command dotresponder is the benchmark's upstream: it answers every A
// query with one fixed record, and every other type with NODATA, over
// DNS-over-TLS (pipelined, for the proxies under test), DNS-over-HTTPS
// (HTTP/2 or HTTP/3, POST to /dns-query), DNS-over-QUIC and over plain UDP
// and TCP (the no-proxy ceiling), at as little CPU per query as it can. It is a
// benchmark tool, not a resolver.
//
//	dotresponder -gen DIR -name dns.bench       # write ca.pem, server.pem, server.key
//	dotresponder -cert server.pem -key server.key \
//	    -dot 127.0.80.1:8853,127.0.80.2:8853 -doh 127.0.80.1:8443,127.0.80.2:8443 \
//	    -h3 127.0.80.1:8443,127.0.80.2:8443 -doq 127.0.80.1:8853,127.0.80.2:8853 \
//	    -plain 127.0.80.10:5300 -stats 127.0.80.10:5399
//	dotresponder -cert server.pem -key server.key -delay 50ms \
//	    -dot 127.0.80.3:8853 -stats 127.0.80.3:5399  # a slow upstream
package main

import (
	"crypto/tls"
	"flag"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	gen := flag.String("gen", "", "write a CA and a server certificate into this directory and exit")
	name := flag.String("name", "dns.bench", "the server certificate's name (with -gen)")
	certFile := flag.String("cert", "", "server certificate (PEM)")
	keyFile := flag.String("key", "", "server key (PEM)")
	dot := flag.String("dot", "", "comma-separated DNS-over-TLS listen addresses")
	doh := flag.String("doh", "", "comma-separated DNS-over-HTTPS (HTTP/2) listen addresses")
	h3 := flag.String("h3", "", "comma-separated DNS-over-HTTPS over HTTP/3 listen addresses (UDP)")
	doq := flag.String("doq", "", "comma-separated DNS-over-QUIC listen addresses (UDP)")
	plain := flag.String("plain", "", "plain DNS listen address, UDP and TCP (the ceiling)")
	stats := flag.String("stats", "", "address that prints accept and query counts to whoever connects")
	ip := flag.String("ip", "192.0.2.1", "the address every A answer holds")
	ttl := flag.Uint("ttl", 3600, "the answer's TTL")
	delay := flag.Duration("delay", 0, "hold every DNS-over-TLS answer back this long (a slow upstream)")
	flag.Parse()
	log.SetPrefix("dotresponder: ")
	log.SetFlags(0)

	if *gen != "" {
		if err := writePKI(*gen, *name); err != nil {
			log.Fatal(err)
		}
		return
	}
	a := newAnswerer(netip.MustParseAddr(*ip), uint32(*ttl))
	var all []*counters
	if *dot != "" || *doh != "" || *h3 != "" || *doq != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatal(err)
		}
		conf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"dot"}}
		// The counters' names begin with the transport, which
		// bench/run's readers of -stats go by.
		for _, addr := range addrs(*dot) {
			c := &counters{name: "dot " + addr}
			all = append(all, c)
			go serveStream(listen("tcp", addr).(net.Listener), conf, a, c, *delay)
		}
		for _, addr := range addrs(*doh) {
			c := &counters{name: "doh " + addr}
			all = append(all, c)
			go serveDoH(listen("tcp", addr).(net.Listener), conf, a, c)
		}
		for _, addr := range addrs(*h3) {
			c := &counters{name: "h3 " + addr}
			all = append(all, c)
			go serveDoH3(listen("udp", addr).(*net.UDPConn), conf, a, c)
		}
		for _, addr := range addrs(*doq) {
			c := &counters{name: "doq " + addr}
			all = append(all, c)
			go serveDoQ(listen("udp", addr).(*net.UDPConn), conf, a, c)
		}
	}
	if *plain != "" {
		udp := &counters{name: "udp " + *plain}
		tcp := &counters{name: "tcp " + *plain}
		all = append(all, udp, tcp)
		go serveUDP(listen("udp", *plain).(*net.UDPConn), a, udp)
		go serveStream(listen("tcp", *plain).(net.Listener), nil, a, tcp, 0)
	}
	if *stats != "" {
		go serveStats(listen("tcp", *stats).(net.Listener), all)
	}
	log.Printf("serving: dot %q (delay %v) doh %q h3 %q doq %q plain %q stats %q", *dot, *delay, *doh, *h3, *doq, *plain, *stats)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

// addrs splits a comma-separated list of addresses; "" is none.
func addrs(list string) []string {
	if list == "" {
		return nil
	}
	return strings.Split(list, ",")
}

// listen binds addr, a net.Listener for "tcp" and a *net.UDPConn for
// "udp", or exits.
func listen(network, addr string) any {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			log.Fatal(err)
		}
		if err := pc.(*net.UDPConn).SetReadBuffer(4 << 20); err != nil {
			log.Printf("udp read buffer: %v", err)
		}
		return pc
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	return ln
}
