package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"testing"
	"time"
)

// TestTLSSplice: with --forward handoff, a TLS connection accepted by a
// worker that does not own its key reaches the owner through a socketpair
// handed over the hand-off link, not through the mesh: the owner sees the
// client's address and TLS summary, the early bytes first, a large echo
// in order, and the client's half-close; no mesh stream is opened; every
// OnOpen gets its OnClose.
func TestTLSSplice(t *testing.T) {
	t.Parallel()
	// The echo handler writes back whatever comes, with no flow control:
	// when the relay's encrypting half falls behind its decrypting half,
	// the owner's unsent bytes grow, and past ConnBufferLimit the
	// connection is closed as a slow reader, which is what the limit is
	// for. This test is about the path, so the limit is above its echo.
	hs := newHarness(t, ForwardHandoff, func(c *Config) { c.ConnBufferLimit, c.ForwardTLS = 8<<20, ForwardTLSSplice })
	hs.enableTLS()
	hs.startBoth()
	key := keyFor(1, "splice", 0)
	c := hs.dialTLS(t, hs.ownTLS[0], key, []byte("early\n"))
	in := c.readInfo(t)
	if in["shard"] != "1" || in["via"] != "0" || in["fwd"] != "true" || in["relayed"] != "true" || in["tls"] != "true" {
		t.Fatalf("info %v: want shard 1 via 0, forwarded, relayed, TLS", in)
	}
	if in["remote"] != c.LocalAddr().String() {
		t.Errorf("the owner sees the client as %s, want %s", in["remote"], c.LocalAddr())
	}
	c.expect(t, "early\n")
	msg := make([]byte, 3<<20)
	rand.Read(msg)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, len(msg))
		n, _ := io.ReadFull(c.r, b)
		got <- b[:n]
	}()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, msg) {
		t.Fatalf("echo of %d bytes: got %d, equal=%v", len(msg), len(b), bytes.Equal(b, msg))
	}
	for _, p := range hs.rt[0].mesh.Stats() {
		if p.Opened != 0 {
			t.Errorf("shard 0 opened %d mesh streams to peer %d; want the socketpair", p.Opened, p.Peer)
		}
	}
	if err := c.Conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if rest := c.readAll(t); len(rest) > 0 {
		t.Fatalf("after the half-close: %q", rest)
	}
	hs.h[1].waitCounts(t, "the owner's OnClose", func(opens, closes int) bool { return closes == opens && opens >= 1 })
}

// TestTLSSpliceOnLoop: forwarded TLS connections hold no goroutine on
// either worker (the accepting worker serves both sides of the splice on
// its loop, the owner its end of the pair), are not counted as the
// accepting worker's Conns, pass on an owner's close as the client's EOF,
// and leave no socket behind once their clients are gone.
func TestTLSSpliceOnLoop(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, ForwardHandoff, func(c *Config) { c.ForwardTLS = ForwardTLSSplice })
	hs.enableTLS()
	hs.h[1].data = func(c *Conn) {
		b, _ := c.Next(-1)
		_, _ = c.Write(b)
		if bytes.Contains(b, []byte("bye")) {
			_ = c.Close()
		}
	}
	hs.startBoth()
	first := hs.dialTLS(t, hs.ownTLS[0], keyFor(1, "splice-loop", 0), nil)
	first.readInfo(t)
	first.echo(t, "warm\n")
	waitFor(t, "the handshake goroutine to end", func() bool { return offLoopConns(t, hs, 0) == 0 })
	base := serverGoroutines()
	const n = 20
	clients := []*client{first}
	for i := range n {
		c := hs.dialTLS(t, hs.ownTLS[0], keyFor(1, "splice-loop", i+1), nil)
		if in := c.readInfo(t); in["via"] != "0" || in["shard"] != "1" {
			t.Fatalf("info %v: want shard 1 via 0", in)
		}
		c.echo(t, fmt.Sprintf("conn %d\n", i))
		clients = append(clients, c)
	}
	waitFor(t, fmt.Sprintf("no more than %d server goroutines with %d forwarded TLS connections (%d)", base, n+1, serverGoroutines()),
		func() bool { return serverGoroutines() <= base })
	st := hs.rt[0].stats(context.Background())
	if st.Active != 0 || st.Sockets != 2*(n+1) {
		t.Errorf("accepting worker: %d active Conns and %d sockets, want 0 and %d (client and pair per connection)", st.Active, st.Sockets, 2*(n+1))
	}

	// The owner closes: the client reads the reply, then the end.
	clients[1].echo(t, "bye\n")
	if rest := clients[1].readAll(t); len(rest) > 0 {
		t.Fatalf("after the owner closed: %q", rest)
	}
	for _, c := range clients {
		_ = c.Close()
	}
	waitFor(t, "no socket left on the accepting worker", func() bool {
		st := hs.rt[0].stats(context.Background())
		return st.Sockets == 0 && st.Active == 0
	})
	hs.h[1].waitCounts(t, "the owner's OnClose", func(opens, closes int) bool { return opens == n+1 && closes == opens })
	if opens, _ := hs.h[0].counts(); opens != 0 {
		t.Errorf("the accepting worker's handler saw %d Conns, want none", opens)
	}
}

// TestTLSSpliceOwnerUnavailable: a TLS connection whose owner never comes
// up gets "-ERR shard 1 unavailable" inside TLS once OwnerWait has passed
// (the hand-off's refusal goes into the pair and through the splice), then
// the end; the accepting worker serves its own keys and keeps no socket.
func TestTLSSpliceOwnerUnavailable(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, ForwardHandoff, func(c *Config) { c.OwnerWait, c.ForwardTLS = 20*time.Millisecond, ForwardTLSSplice })
	hs.enableTLS()
	hs.start(0, false)
	for i := range 3 {
		c := hs.dialTLS(t, hs.ownTLS[0], keyFor(1, "orphan-tls", i), nil)
		if got := string(c.readAll(t)); got != "-ERR shard 1 unavailable\n" {
			t.Errorf("connection %d: got %q, want the -ERR line and the end", i, got)
		}
		_ = c.Close()
	}
	c := hs.dialTLS(t, hs.ownTLS[0], keyFor(0, "mine-tls", 0), nil)
	c.readInfo(t)
	c.echo(t, "still served\n")
	_ = c.Close()
	waitFor(t, "no socket left on the accepting worker", func() bool {
		return hs.rt[0].stats(context.Background()).Sockets == 0
	})
	hs.stop(0)
	hs.h[0].checkBalanced(t)
}
