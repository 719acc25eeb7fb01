package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// expectBusy reads what a refused client gets: the busy line, then EOF.
func expectBusy(t *testing.T, c *client) {
	t.Helper()
	b, err := io.ReadAll(c.r)
	if err != nil && !errIsClosed(err) {
		t.Fatalf("read a refusal: %q, %v", b, err)
	}
	if string(b) != "-ERR server busy\n" {
		t.Fatalf("got %q, want -ERR server busy and a close", b)
	}
}

// TestMaxConns: with MaxConns 3, a worker holding 3 connections (served,
// or still before their preamble) refuses the 4th with -ERR server busy
// and counts it; once one closes, a new one is served. A connection
// handed off to a full owner is refused by the owner the same way; one
// relayed to it holds no descriptor there and is served.
func TestMaxConns(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, func(c *Config) { c.MaxConns = 3 })
		hs.startBoth()

		// Served connections.
		var held []*client
		for n := range 3 {
			c, _ := dial(t, hs.own[0], keyFor(0, "held", n), nil)
			held = append(held, c)
		}
		expectBusy(t, dialRaw(t, hs.own[0], keyFor(0, "over", 0), nil))
		if got := hs.rt[0].Busy(); got != 1 {
			t.Errorf("busy count %d, want 1", got)
		}
		held[0].Close()
		hs.h[0].waitCounts(t, "the close", func(_, closes int) bool { return closes == 1 })
		waitFor(t, "the socket counted out", func() bool { return hs.rt[0].socks.Load() == 2 })
		c, _ := dial(t, hs.own[0], keyFor(0, "after", 0), nil)
		c.echo(t, "still served\n")

		// Connections before their preamble count as well.
		var quiet []net.Conn
		for range 3 {
			nc, err := net.DialTimeout("tcp", hs.own[1], bound)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			quiet = append(quiet, nc)
		}
		waitFor(t, "3 connections open on shard 1", func() bool { return hs.rt[1].socks.Load() == 3 })
		expectBusy(t, dialRaw(t, hs.own[1], keyFor(1, "over", 1), nil))

		c.Close()
		waitFor(t, "room on shard 0", func() bool { return hs.rt[0].socks.Load() == 2 })

		// Shard 1 is full: a connection accepted by shard 0 for a key of
		// shard 1 is refused by shard 1 when handed off; relayed, it is
		// served.
		fwd := dialRaw(t, hs.own[0], keyFor(1, "fwd", 0), nil)
		if mode == ForwardHandoff {
			expectBusy(t, fwd)
			if got := hs.rt[1].Busy(); got != 2 {
				t.Errorf("shard 1 busy count %d, want 2", got)
			}
		} else {
			in := fwd.readInfo(t)
			if in["relayed"] != "true" {
				t.Errorf("not relayed: %v", in)
			}
			fwd.Close()
		}
		for _, nc := range quiet {
			nc.Close()
		}
		for _, c := range held[1:] {
			c.Close()
		}
		waitFor(t, "every socket counted out", func() bool {
			return hs.rt[0].socks.Load() == 0 && hs.rt[1].socks.Load() == 0
		})
		hs.stopAll()
		hs.h[0].checkBalanced(t)
		hs.h[1].checkBalanced(t)
	})
}

func TestDefaultMaxConns(t *testing.T) {
	for _, tc := range []struct {
		limit   uint64
		workers int
		want    int
	}{
		{1024, 1, 480},
		{1024, 4, 474},
		{1 << 20, 8, (1<<20 - 64 - 28) / 2},
		{1 << 62, 1, (1<<24 - 64) / 2},
		{10, 2, 1},
	} {
		if got := DefaultMaxConns(tc.limit, tc.workers); got != tc.want {
			t.Errorf("DefaultMaxConns(%d, %d) = %d, want %d", tc.limit, tc.workers, got, tc.want)
		}
	}
}

// keepAliveOpen makes the handlers write, on open, whether the
// connection's socket has SO_KEEPALIVE ("ka=1"), or "ka=none" for a
// connection without a socket of its own here (relayed).
func keepAliveOpen(hs *harness) {
	for i := range 2 {
		hs.h[i].open = func(c *Conn) {
			line := "ka=none\n"
			if c.gc != nil {
				v, err := unix.GetsockoptInt(c.gc.Fd(), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
				if err != nil {
					line = "ka=" + err.Error() + "\n"
				} else {
					line = fmt.Sprintf("ka=%d\n", v)
				}
			}
			_, _ = c.Write([]byte(line))
		}
	}
}

// TestKeepAlive: client sockets have TCP keep-alive on by default,
// including one handed off to its owner (the same socket), and off when
// Config.KeepAlive is negative.
func TestKeepAlive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		keepAlive time.Duration
		want      string
	}{
		{"default", DefaultKeepAlive, "ka=1\n"},
		{"disabled", -1, "ka=0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, ForwardHandoff, func(c *Config) { c.KeepAlive = tc.keepAlive })
			keepAliveOpen(hs)
			hs.startBoth()
			local := dialRaw(t, hs.own[0], keyFor(0, "ka", 0), nil)
			local.expect(t, tc.want)
			handed := dialRaw(t, hs.own[0], keyFor(1, "ka", 1), nil)
			handed.expect(t, tc.want)
		})
	}
}

// pinger sends a byte every few milliseconds on c and reads its echo,
// until stop is closed; it reports the first error.
func pinger(c *client, stop <-chan struct{}, wg *sync.WaitGroup, errs chan<- error) {
	defer wg.Done()
	buf := make([]byte, 1)
	for {
		select {
		case <-stop:
			return
		case <-time.After(3 * time.Millisecond):
		}
		if _, err := c.Write([]byte("p")); err != nil {
			errs <- err
			return
		}
		if _, err := io.ReadFull(c.r, buf); err != nil {
			errs <- err
			return
		}
	}
}

// TestIdleTimeout: with Config.IdleTimeout, a connection that sends
// nothing is closed, local or forwarded (handed off, or relayed), and its
// OnClose gets ErrIdleTimeout; connections that send every few
// milliseconds, and one whose handler removed its timeout
// (SetIdleTimeout(0)), are still open by then.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		// A second: far above the pingers' 3 ms, so that a loaded machine
		// cannot make an active connection look idle.
		hs := newHarness(t, mode, func(c *Config) { c.IdleTimeout = time.Second })
		for i := range 2 {
			hs.h[i].open = func(c *Conn) {
				if strings.HasPrefix(string(c.Key()), "never-") {
					c.SetIdleTimeout(0)
				}
				defaultOpen(c)
			}
		}
		hs.startBoth()
		never, _ := dial(t, hs.own[0], keyFor(0, "never", 0), nil)
		stop := make(chan struct{})
		errs := make(chan error, 2)
		var wg sync.WaitGroup
		for owner := range 2 {
			c, _ := dial(t, hs.own[0], keyFor(owner, "active", owner), nil)
			wg.Add(1)
			go pinger(c, stop, &wg, errs)
		}
		var idle []*client
		for owner := range 2 {
			c, _ := dial(t, hs.own[0], keyFor(owner, "idle", owner), nil)
			idle = append(idle, c)
		}
		for owner, c := range idle {
			if b := c.readAll(t); len(b) > 0 {
				t.Errorf("idle connection of shard %d: read %q before the close", owner, b)
			}
			key := keyFor(owner, "idle", owner)
			waitFor(t, "the idle connection's OnClose", func() bool {
				_, ok := hs.h[owner].errOf(key)
				return ok
			})
			if err, _ := hs.h[owner].errOf(key); !errors.Is(err, ErrIdleTimeout) {
				t.Errorf("idle connection of shard %d: OnClose(%v), want ErrIdleTimeout", owner, err)
			}
		}
		close(stop)
		wg.Wait()
		select {
		case err := <-errs:
			t.Errorf("an active connection failed: %v", err)
		default:
		}
		for owner := range 2 {
			if err, closed := hs.h[owner].errOf(keyFor(owner, "active", owner)); closed {
				t.Errorf("active connection of shard %d closed: %v", owner, err)
			}
		}
		if err, closed := hs.h[0].errOf(keyFor(0, "never", 0)); closed {
			t.Errorf("connection without a timeout closed: %v", err)
		}
		never.echo(t, "still here\n")
		if got := hs.rt[0].idleClosed.Load() + hs.rt[1].idleClosed.Load(); got != 2 {
			t.Errorf("%d idle closes counted, want 2", got)
		}
		hs.stopAll()
		hs.h[0].checkBalanced(t)
		hs.h[1].checkBalanced(t)
	})
}

// TestSetIdleTimeout: with no Config.IdleTimeout, a handler's
// SetIdleTimeout closes that connection when it goes idle, with
// ErrIdleTimeout, local, forwarded (handed off or relayed) or TLS (local
// or relayed), while a connection without one stays open.
func TestSetIdleTimeout(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, nil)
		for i := range 2 {
			hs.h[i].open = func(c *Conn) {
				if strings.HasPrefix(string(c.Key()), "short-") {
					c.SetIdleTimeout(300 * time.Millisecond) // long enough for the echo below on a loaded machine
				}
				defaultOpen(c)
			}
		}
		hs.enableTLS()
		hs.startBoth()
		plain, _ := dial(t, hs.own[0], keyFor(1, "plain", 0), nil)
		for i := range 4 {
			owner, tls := i%2, i >= 2
			key := keyFor(owner, "short", i)
			var c *client
			if tls {
				c = hs.dialTLS(t, hs.ownTLS[0], key, nil)
				c.readInfo(t)
			} else {
				c, _ = dial(t, hs.own[0], key, nil)
			}
			c.echo(t, "one\n")
			if b, err := io.ReadAll(c.r); len(b) > 0 || (err != nil && !errIsClosed(err)) {
				t.Errorf("tls=%t: read %q, %v; want the close", tls, b, err)
			}
			waitFor(t, "the OnClose", func() bool {
				_, ok := hs.h[owner].errOf(key)
				return ok
			})
			if err, _ := hs.h[owner].errOf(key); !errors.Is(err, ErrIdleTimeout) {
				t.Errorf("shard %d, tls=%t: OnClose(%v), want ErrIdleTimeout", owner, tls, err)
			}
		}
		if err, closed := hs.h[1].errOf(keyFor(1, "plain", 0)); closed {
			t.Errorf("connection without a timeout closed: %v", err)
		}
		plain.echo(t, "still here\n")
		hs.stopAll()
		hs.h[0].checkBalanced(t)
		hs.h[1].checkBalanced(t)
	})
}
