// Go TCP echo server (standard library only), the counterpart of
// perf/runtimes/asio/echo_server.cpp: one goroutine per connection reads what
// is there into its own buffer and writes it back.
//
//	perf_echo_go -port P [-buf BYTES]
//
// GOMAXPROCS follows the CPU affinity: pinned to one core by perf/run, the
// scheduler runs goroutines on one thread (plus the netpoller's).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

func serve(c *net.TCPConn, size int) {
	defer c.Close()
	buf := make([]byte, size)
	for {
		n, err := c.Read(buf)
		if err != nil || n == 0 {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func main() {
	port := flag.Int("port", 7000, "TCP port on 127.0.0.1")
	size := flag.Int("buf", 4096, "read buffer per connection, bytes")
	flag.Parse()
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: *port})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "go echo server on 127.0.0.1:%d\n", *port)
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			continue
		}
		c.SetNoDelay(true) // already Go's default; stated for symmetry
		go serve(c, *size)
	}
}
