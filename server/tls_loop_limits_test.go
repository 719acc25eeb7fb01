package server

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTLSLoopLimits: a local TLS Conn on the loop is held to the limits of
// a plain local one: ConnBufferLimit on what waits to be sent
// (ErrSlowReader) and on what the handler leaves unconsumed
// (ErrInputLimit, with "-ERR read buffer limit reached" sent inside TLS),
// and the idle timeout (ErrIdleTimeout).
func TestTLSLoopLimits(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	hs := newHarness(t, ForwardRelay, func(c *Config) {
		c.ConnBufferLimit = limit
		c.IdleTimeout = 100 * time.Millisecond
	})
	hs.enableTLS()
	h := hs.h[0]
	flood := make([]byte, 8<<20) // more than the socket buffers and the limit
	h.open = func(c *Conn) {
		switch {
		case c.tl == nil:
			_, _ = fmt.Fprintf(c, "-ERR not on the loop\n")
		case string(c.Key()) == keyFor(0, "flood", 0):
			if _, err := c.Write(flood); !errors.Is(err, ErrSlowReader) {
				_, _ = fmt.Fprintf(c, "-ERR Write: %v, want ErrSlowReader\n", err)
			}
		default:
			_, _ = fmt.Fprintf(c, "open\n")
		}
	}
	h.data = func(c *Conn) {
		if string(c.Key()) != keyFor(0, "hoard", 0) {
			b, _ := c.Next(-1)
			_, _ = c.Write(b)
		}
	}
	hs.startBoth()

	key := keyFor(0, "flood", 0)
	flooded := hs.dialTLS(t, hs.ownTLS[0], key, nil)
	waitFor(t, "the flooded Conn's OnClose", func() bool { _, ok := h.errOf(key); return ok })
	if err, _ := h.errOf(key); !errors.Is(err, ErrSlowReader) {
		t.Errorf("flood: OnClose(%v), want ErrSlowReader", err)
	}
	flooded.Close()

	key = keyFor(0, "hoard", 0)
	hoard := hs.dialTLS(t, hs.ownTLS[0], key, nil)
	hoard.expect(t, "open\n")
	go func() { _, _ = hoard.Write(make([]byte, 4*limit)) }()
	if line, err := hoard.r.ReadString('\n'); line != "-ERR read buffer limit reached\n" {
		t.Errorf("hoarding handler: client read %q, %v", line, err)
	}
	waitFor(t, "the hoarding Conn's OnClose", func() bool { _, ok := h.errOf(key); return ok })
	if err, _ := h.errOf(key); !errors.Is(err, ErrInputLimit) {
		t.Errorf("hoard: OnClose(%v), want ErrInputLimit", err)
	}
	hoard.Close()

	key = keyFor(0, "idle", 0)
	idle := hs.dialTLS(t, hs.ownTLS[0], key, nil)
	idle.expect(t, "open\n")
	idle.echo(t, "once\n")
	if b := idle.readAll(t); len(b) > 0 {
		t.Errorf("idle connection: read %q before the close", b)
	}
	waitFor(t, "the idle Conn's OnClose", func() bool { _, ok := h.errOf(key); return ok })
	if err, _ := h.errOf(key); !errors.Is(err, ErrIdleTimeout) {
		t.Errorf("idle: OnClose(%v), want ErrIdleTimeout", err)
	}
	idle.Close()
	hs.stopAll()
	h.checkBalanced(t)
}

// TestTLSLoopWriteFails: when a write to the socket fails, gnet closes
// the connection at once, OnClose running inside the Write: the Conn's
// Write returns the error, a Close whose close_notify cannot be sent
// returns quietly, and each Conn gets one OnClose.
func TestTLSLoopWriteFails(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, ForwardRelay, nil)
	hs.enableTLS()
	h := hs.h[0]
	h.open = func(c *Conn) {
		if c.tl == nil {
			_, _ = fmt.Fprintf(c, "-ERR not on the loop\n")
			return
		}
		_ = unix.Shutdown(c.gc.Fd(), unix.SHUT_WR) // every write fails: EPIPE
		switch string(c.Key()) {
		case keyFor(0, "write", 0):
			if _, err := c.Write([]byte("lost")); err == nil {
				h.mu.Lock()
				h.problem("Write on a shut-down socket: no error")
				h.mu.Unlock()
			}
		default:
			_ = c.Close()
		}
	}
	hs.startBoth()
	for _, tag := range []string{"write", "close"} {
		key := keyFor(0, tag, 0)
		c := hs.dialTLS(t, hs.ownTLS[0], key, nil)
		waitFor(t, "OnClose of "+tag, func() bool { _, ok := h.errOf(key); return ok })
		c.Close()
	}
	if err, _ := h.errOf(keyFor(0, "write", 0)); err == nil {
		t.Errorf("failed Write: OnClose(nil), want the write's error")
	}
	if n := hs.logs.count("panicked"); n != 0 {
		t.Errorf("%d handler panics:\n%s", n, hs.logs.String())
	}
	hs.stopAll()
	h.checkBalanced(t)
}
