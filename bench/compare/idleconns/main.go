// Command idleconns opens many connections to an echo server, sends each a
// line preamble and a probe, waits for every probe to come back (so the
// server has finished its work for that connection: read the key, and for
// Subordinate forwarded it to the owner), then holds them all open and idle
// until its standard input is closed.
//
//	idleconns -addr 127.0.0.1:7000 -conns 10000 [-keys 1000] [-parallel 64] [-tls]
//
// With -tls it speaks TLS to the server (a tls:// listener), without
// verifying its certificate: a benchmark on loopback, not a client.
//
// It prints "ready N" on standard output once N connections are open and
// verified, or exits non-zero with the first error. The comparison script
// measures the server's memory while the connections are held.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "server address `host:port`")
	conns := flag.Int("conns", 10000, "connections to open and hold")
	keys := flag.Int("keys", 1000, "distinct keys, assigned round robin")
	parallel := flag.Int("parallel", 64, "connections opened at once")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline for opening and verifying one connection")
	useTLS := flag.Bool("tls", false, "speak TLS (the server's certificate is not verified)")
	flag.Parse()

	var d dialer = &net.Dialer{Timeout: *timeout}
	if *useTLS {
		d = &tls.Dialer{NetDialer: &net.Dialer{Timeout: *timeout}, Config: &tls.Config{InsecureSkipVerify: true}}
	}
	held, err := open(context.Background(), d, *addr, *conns, *keys, *parallel, *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "idleconns: %v\n", err)
		closeAll(held)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", len(held))
	// Hold until the caller closes our stdin.
	_, _ = io.Copy(io.Discard, os.Stdin)
	closeAll(held)
}

// dialer is a net.Dialer or a tls.Dialer.
type dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// open dials n connections, at most parallel at a time, each with a line
// preamble for key "k<i mod keys>" and a probe that must be echoed back.
func open(ctx context.Context, d dialer, addr string, n, keys, parallel int, timeout time.Duration) ([]net.Conn, error) {
	if keys < 1 || parallel < 1 || n < 0 {
		return nil, errors.New("keys and parallel must be >= 1, conns >= 0")
	}
	held := make([]net.Conn, n)
	sem := make(chan struct{}, parallel)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i := 0; i < n; i++ {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := dialOne(ctx, d, addr, fmt.Sprintf("k%d", i%keys), timeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("connection %d: %w", i, err)
				}
				return
			}
			held[i] = c
		}(i)
	}
	wg.Wait()
	out := held[:0]
	for _, c := range held {
		if c != nil {
			out = append(out, c)
		}
	}
	return out, firstErr
}

func dialOne(ctx context.Context, d dialer, addr, key string, timeout time.Duration) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	probe := []byte("idle-probe-" + key)
	msg := append([]byte(key+"\n"), probe...)
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(msg); err != nil {
		c.Close()
		return nil, fmt.Errorf("write: %w", err)
	}
	got := make([]byte, len(probe))
	if _, err := io.ReadFull(c, got); err != nil {
		c.Close()
		return nil, fmt.Errorf("read probe: %w", err)
	}
	if !bytes.Equal(got, probe) {
		c.Close()
		return nil, fmt.Errorf("probe echoed as %q, want %q", got, probe)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}
