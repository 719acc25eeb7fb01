//go:build linux

package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/subordinate/subordinate/bench"
)

// fakeBenchEnv makes the test binary act as a minimal stand-in for
// `subordinate bench --json`, so the runner can be tested end to end
// without the real load generator. It lives in a test file on purpose: it
// is not the load generator, only enough of its CLI and JSON contract to
// drive the runner.
const fakeBenchEnv = "COMPARE_FAKE_BENCH"

func TestMain(m *testing.M) {
	if os.Getenv(fakeBenchEnv) == "1" {
		os.Exit(fakeBench(os.Args[1:]))
	}
	if os.Getenv(fakeServeEnv) == "1" {
		os.Exit(fakeServe(os.Args[1:]))
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func fakeBench(args []string) int {
	if len(args) == 0 || args[0] != "bench" {
		fmt.Fprintln(os.Stderr, "fake bench: want the bench subcommand")
		return 2
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	addr := fs.String("addr", "", "")
	conns := fs.Int("conns", 1, "")
	dur := fs.Duration("duration", time.Second, "")
	size := fs.Int("size", 16, "")
	keys := fs.Int("keys", 1, "")
	dist := fs.String("dist", "uniform", "")
	frame := fs.String("frame", "line", "")
	mode := fs.String("mode", "pingpong", "")
	depth := fs.Int("depth", 1, "")
	linger0 := fs.Bool("linger0", false, "")
	keyFrom := fs.String("key-from", "frame", "")
	useTLS := fs.Bool("tls", false, "")
	caFile := fs.String("tls-ca", "", "")
	_ = fs.Bool("json", false, "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *mode != "pipeline" {
		*depth = 1
	}
	dial, err := fakeDialer(*addr, *keyFrom, *useTLS, *caFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake bench:", err)
		return 2
	}
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs = map[string]int64{}
		wg   sync.WaitGroup
	)
	deadline := time.Now().Add(*dur)
	payload := bytes.Repeat([]byte{'x'}, *size)
	fail := func(kind string) { mu.Lock(); errs[kind]++; mu.Unlock() }
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			got := make([]byte, *size**depth)
			for time.Now().Before(deadline) {
				if c == nil {
					var err error
					if c, err = dial(rand.IntN(*keys)); err != nil {
						fail("dial")
						return
					}
				}
				start := time.Now()
				if _, err := c.Write(bytes.Repeat(payload, *depth)); err != nil {
					fail("write")
					return
				}
				if _, err := io.ReadFull(c, got); err != nil {
					fail("read")
					return
				}
				if !bytes.Equal(got, bytes.Repeat(payload, *depth)) {
					fail("mismatch")
					return
				}
				mu.Lock()
				for j := 0; j < *depth; j++ {
					lats = append(lats, time.Since(start))
				}
				mu.Unlock()
				if *mode == "connect" {
					if tc, ok := c.(*net.TCPConn); ok && *linger0 {
						_ = tc.SetLinger(0)
					}
					c.Close()
					c = nil
				}
			}
			if c != nil {
				c.Close()
			}
		}()
	}
	wg.Wait()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[int(p*float64(len(lats)-1))].Microseconds())
	}
	var total int64
	for _, n := range errs {
		total += n
	}
	secs := dur.Seconds()
	out := map[string]any{
		"mode": *mode, "frame": *frame, "conns": *conns, "size": *size, "keys": *keys,
		"dist": *dist, "depth": *depth, "duration_s": secs, "requests": len(lats),
		"rps": float64(len(lats)) / secs, "mbps": float64(len(lats)**size) / secs / 1e6,
		"p50_us": pct(0.5), "p90_us": pct(0.9), "p99_us": pct(0.99), "p999_us": pct(0.999),
		"max_us": pct(1), "errors": errs, "error_total": total,
	}
	fmt.Println("fake bench: done")
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return 0
}

// fakeDialer returns how the stand-in load generator opens a connection
// for key index i and presents its key as --key-from says, the way the
// real one does (package bench): a line preamble, the key's loopback
// source address (client-ip), a request head whose echo it reads
// (http-header:NAME), or the TLS server name (sni).
func fakeDialer(addr, keyFrom string, useTLS bool, caFile string) (func(i int) (net.Conn, error), error) {
	var tlsCfg *tls.Config
	if useTLS {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", caFile)
		}
		tlsCfg = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	}
	header, isHeader := strings.CutPrefix(keyFrom, "http-header:")
	switch {
	case keyFrom == "frame", keyFrom == "client-ip", keyFrom == "sni" && useTLS, isHeader:
	default:
		return nil, fmt.Errorf("key-from %q (tls %v): not faked", keyFrom, useTLS)
	}
	return func(i int) (net.Conn, error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		if keyFrom == "client-ip" {
			d.LocalAddr = &net.TCPAddr{IP: bench.KeyAddr(i).AsSlice()}
		}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if tlsCfg != nil {
			t := tlsCfg.Clone()
			if keyFrom == "sni" {
				// The certificate is for 127.0.0.1, not for the key: a stand-in
				// does not check it.
				t.InsecureSkipVerify = true
				t.ServerName = fmt.Sprintf("k%d.bench", i)
			}
			tc := tls.Client(c, t)
			if err := tc.Handshake(); err != nil {
				c.Close()
				return nil, err
			}
			c = tc
		}
		switch {
		case keyFrom == "frame":
			_, err = fmt.Fprintf(c, "k%d\n", i)
		case isHeader:
			head := fmt.Sprintf("GET / HTTP/1.1\r\nHost: %s\r\n%s: k%d\r\n\r\n", addr, header, i)
			if _, err = io.WriteString(c, head); err == nil {
				got := make([]byte, len(head))
				if _, err = io.ReadFull(c, got); err == nil && string(got) != head {
					err = fmt.Errorf("head echoed as %q", got)
				}
			}
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}, nil
}

// fakeServeEnv makes the test binary act as a stand-in for `subordinate
// serve` with --key-from, for the issue-13 suite: an echo server on the
// --listen address (tls:// with --cert and --key) that reads a line
// preamble first unless --key-from says the key is elsewhere, and then
// echoes every byte, a request head included, as Subordinate's echo
// handler does with the early data it is given.
const fakeServeEnv = "COMPARE_FAKE_SERVE"

func fakeServe(args []string) int {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(os.Stderr, "fake serve: want the serve subcommand")
		return 2
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	keyFrom := fs.String("key-from", "frame", "")
	certFile := fs.String("cert", "", "")
	keyFile := fs.String("key", "", "")
	_ = fs.Int("workers", 1, "")
	_ = fs.String("handler", "echo", "")
	_ = fs.String("frame", "line", "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	scheme, addr, _ := strings.Cut(*listen, "://")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake serve:", err)
		return 1
	}
	if scheme == "tls" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake serve:", err)
			return 1
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			if *keyFrom == "frame" {
				if _, err := br.ReadSlice('\n'); err != nil {
					return
				}
			}
			_, _ = br.WriteTo(c)
		}()
	}
}
