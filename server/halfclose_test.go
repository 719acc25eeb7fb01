package server

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"syscall"
	"testing"
)

// TestHalfCloseUnsentReply: a client sends a request, half-closes, and
// only then reads. The worker sees its EOF while most of the echo still
// waits in gnet's outbound buffer (the sockets' buffers are tiny): gnet
// would drop that when it closes at EOF. Whether the handler closes in
// OnEOF (the default) or keeps the connection half-closed ("keep-"), the
// client must read the whole reply, in order.
func TestHalfCloseUnsentReply(t *testing.T) {
	hs := newHarness(t, ForwardHandoff, nil)
	hs.setListenerOption(syscall.SOL_SOCKET, syscall.SO_SNDBUF, 16<<10)
	hs.start(0, false)
	for i, tag := range []string{"close", "keep-"} {
		c, _ := dial(t, hs.own[0], keyFor(0, tag, i), nil)
		_ = c.Conn.(*net.TCPConn).SetReadBuffer(64 << 10)
		msg := make([]byte, 512<<10) // below ConnBufferLimit, far above the sockets' buffers
		rand.Read(msg)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if n, err := io.ReadFull(c.r, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%s: read %d of %d bytes, equal=%v, err %v", tag, n, len(msg), bytes.Equal(got[:n], msg[:n]), err)
		}
		if tag == "close" {
			if rest := c.readAll(t); len(rest) > 0 {
				t.Fatalf("%s: %d bytes more than the reply", tag, len(rest))
			}
		}
	}
	hs.h[0].waitCounts(t, "the closed connection's OnClose", func(opens, closes int) bool { return closes >= 1 })
}
