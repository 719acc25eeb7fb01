package server

// Leak tests: they count this process's descriptors and goroutines, so
// they do not run in parallel with other tests (a test that calls
// t.Parallel waits until every serial test has finished).

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// settle bounds the wait for descriptors and goroutines to go away.
const settle = 10 * time.Second

// waitFDs waits (bounded) until at most want descriptors are open and
// returns how many are.
func waitFDs(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(settle)
	for {
		n := countFDs(t)
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// churn makes n connections accepted by shard 0 for keys shard 1 owns
// (handed off in handoff mode), with workers at a time; each sends its
// preamble and a few early bytes, checks the echo, and closes, every
// third with an RST.
func churn(t *testing.T, hs *harness, n, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := oneConn(hs.own[0], keyFor(1, "churn", i), i%3 == 0); err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// oneConn is one connection of churn, without a testing.T (it runs on
// a worker goroutine).
func oneConn(addr, key string, reset bool) error {
	c, err := dialNoT(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Write([]byte(key + "\nping")); err != nil {
		return err
	}
	line, err := c.r.ReadString('\n')
	if err != nil || !strings.Contains(line, "shard=1 via=0 fwd=true") {
		return fmt.Errorf("info line %q, %v", line, err)
	}
	buf := make([]byte, 4)
	if _, err := c.r.Read(buf); err != nil || string(buf) != "ping" {
		return fmt.Errorf("echo %q, %v", buf, err)
	}
	if reset {
		c.resetClose()
	}
	return nil
}

// TestNoLeaksAfterManyHandoffs: after thousands of handed-off
// connections, closed by their clients (some with an RST), both shards
// are back to the descriptors and goroutines they had before them; and
// after Stop, the process is back to what it had before the shards.
func TestNoLeaksAfterManyHandoffs(t *testing.T) {
	const conns = 3000
	fdsBefore := countFDs(t)
	gBefore := goroutines()

	hs := newHarness(t, ForwardHandoff, nil)
	hs.startBoth()
	churn(t, hs, 20, 2) // warm up: gnet's worker pool, buffers
	hs.h[1].waitCounts(t, "the warm-up's OnClose", func(o, c int) bool { return o == 20 && c == 20 })
	fdsRunning := countFDs(t)
	gRunning := goroutines()

	churn(t, hs, conns, 4)
	hs.h[1].waitCounts(t, "every OnClose", func(o, c int) bool { return o == 20+conns && c == o })
	if n := waitFDs(t, fdsRunning); n > fdsRunning {
		t.Errorf("after %d handed-off connections: %d descriptors open, %d before them", conns, n, fdsRunning)
	}
	if extra := newGoroutines(gRunning, settle); len(extra) > 0 {
		t.Errorf("after %d handed-off connections: %d goroutines more than before them:\n%s", conns, len(extra), strings.Join(extra, "\n\n"))
	}
	if o, _ := hs.h[0].counts(); o != 0 {
		t.Errorf("shard 0 opened %d connections, want none (all were handed off)", o)
	}

	hs.stopAll()
	hs.h[0].checkBalanced(t)
	hs.h[1].checkBalanced(t)
	if n := waitFDs(t, fdsBefore); n > fdsBefore {
		t.Errorf("after Stop: %d descriptors open, %d before the shards", n, fdsBefore)
	}
	t.Run("goroutines after Stop", func(t *testing.T) {
		if extra := newGoroutines(gBefore, settle); len(extra) > 0 {
			t.Errorf("after Stop: %d goroutines more than before the shards:\n%s", len(extra), strings.Join(extra, "\n\n"))
		}
	})
}

// waitGoroutine waits (bounded) until a goroutine runs fn.
func waitGoroutine(t *testing.T, fn string) {
	t.Helper()
	deadline := time.Now().Add(settle)
	for time.Now().Before(deadline) {
		for _, g := range goroutines() {
			if strings.Contains(g, fn) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no goroutine runs %s", fn)
}

// TestNoLeaksAfterStop: Stop with connections of every kind open (one
// of them in the middle of its TLS handshake), in both modes, leaves no descriptor and no goroutine of the shards
// behind (the connections are closed, their relays and readers end).
func TestNoLeaksAfterStop(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			fdsBefore := countFDs(t)
			gBefore := goroutines()
			hs := newHarness(t, mode, nil)
			hs.enableTLS()
			hs.startBoth()
			conns := openEveryKind(t, hs, "leak", 2)
			conns = append(conns, halfClosed(t, hs)...)
			conns = append(conns, openTLS(t, hs, "leak-tls")...)
			// And one in the middle of its handshake, whose goroutine
			// waits for bytes the loop has not read.
			mid, err := net.Dial("tcp", hs.ownTLS[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mid.Write([]byte{0x16, 0x03, 0x01, 0x01, 0x00}); err != nil {
				t.Fatal(err)
			}
			waitGoroutine(t, "server.(*routed).serveTLS")
			hs.stopAll()
			hs.h[0].checkBalanced(t)
			hs.h[1].checkBalanced(t)
			for _, o := range conns {
				o.c.Close() // the clients' own descriptors
			}
			mid.Close()
			if n := waitFDs(t, fdsBefore); n > fdsBefore {
				t.Errorf("after Stop: %d descriptors open, %d before the shards", n, fdsBefore)
			}
			extra := newGoroutines(gBefore, settle)
			if len(extra) > 0 {
				t.Errorf("after Stop: %d goroutines more than before the shards:\n%s", len(extra), strings.Join(extra, "\n\n"))
			}
		})
	}
}
