package server

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
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
	hs := newHarness(t, ForwardHandoff, func(c *Config) { c.ConnBufferLimit = 8 << 20 })
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
