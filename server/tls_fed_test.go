package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// trickleConn writes what it is given one byte at a time, a little apart,
// so that the server reads a ClientHello in many pieces.
type trickleConn struct {
	net.Conn
	left int // bytes still to trickle; then writes go whole
}

func (c *trickleConn) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) && c.left > 0 {
		if _, err := c.Conn.Write(p[n : n+1]); err != nil {
			return n, err
		}
		n++
		c.left--
		time.Sleep(time.Millisecond)
	}
	if n == len(p) {
		return n, nil
	}
	m, err := c.Conn.Write(p[n:])
	return n + m, err
}

// TestTLSFedHandshake: the handshake of a tls:// connection runs on a
// goroutine that the loop feeds, while gnet keeps the socket. A
// ClientHello in many pieces, a client that says its key and data in the
// same packets as its Finished, a client gone or reset mid-handshake and
// one that stalls past the preamble timeout: each works or is closed,
// locally and forwarded, TLS 1.2 and 1.3, and nothing is left behind.
func TestTLSFedHandshake(t *testing.T) {
	for _, mode := range []string{ForwardHandoff, ForwardRelay} {
		t.Run(mode, func(t *testing.T) {
			hs := newHarness(t, mode, func(c *Config) { c.PreambleTimeout = time.Second })
			hs.enableTLS()
			hs.startBoth()
			warm := hs.dialTLS(t, hs.ownTLS[0], keyFor(0, "warm", 0), nil)
			warm.readInfo(t)
			warm.Close()
			hs.h[0].waitCounts(t, "the first OnClose", func(o, c int) bool { return o == 1 && c == 1 })
			fdsBefore := countFDs(t)
			gBefore := goroutines()

			opened := [2]int{1, 0} // Conns opened on each shard
			for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				for owner := range 2 {
					// Trickled: the start of the ClientHello byte by byte.
					raw, err := net.DialTimeout("tcp", hs.ownTLS[0], bound)
					if err != nil {
						t.Fatal(err)
					}
					tc := tls.Client(&trickleConn{Conn: raw, left: 200}, &tls.Config{
						RootCAs: hs.roots, ServerName: "127.0.0.1", MinVersion: version, MaxVersion: version,
					})
					_ = tc.SetDeadline(time.Now().Add(bound))
					if err := tc.Handshake(); err != nil {
						t.Fatalf("TLS %x, trickled handshake: %v", version, err)
					}
					tc.NetConn().(*trickleConn).left = 0
					key := keyFor(owner, "trickle", int(version))
					if _, err := io.WriteString(tc, key+"\n"); err != nil {
						t.Fatal(err)
					}
					c := &client{Conn: tc, r: bufio.NewReader(tc)}
					if in := c.readInfo(t); in["shard"] != strconv.Itoa(owner) {
						t.Errorf("TLS %x, key %q: served by shard %s, want %d", version, key, in["shard"], owner)
					}
					c.echo(t, "and more\n")
					c.Close()

					// Key, early data and more in the client's first
					// write, which crypto/tls sends right behind its
					// Finished: what the goroutine does not read comes
					// back to the loop with the connection.
					early := strings.Repeat("e", 40<<10)
					c = hs.dialTLS(t, hs.ownTLS[0], keyFor(owner, "eager", int(version)), []byte(early))
					c.readInfo(t)
					back := make([]byte, len(early))
					if _, err := io.ReadFull(c.r, back); err != nil || string(back) != early {
						t.Fatalf("TLS %x: the echo of the early bytes: %v", version, err)
					}
					c.echo(t, "after\n")
					c.Close()
					opened[owner] += 2
				}
			}

			// Gone mid-handshake: half a record, then a FIN or a reset.
			for _, reset := range []bool{false, true} {
				raw, err := net.DialTimeout("tcp", hs.ownTLS[0], bound)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := raw.Write([]byte{0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00}); err != nil {
					t.Fatal(err)
				}
				if reset {
					_ = raw.(*net.TCPConn).SetLinger(0)
				}
				raw.Close()
			}
			// Stalled mid-handshake: closed at the preamble timeout.
			raw, err := net.DialTimeout("tcp", hs.ownTLS[0], bound)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Write([]byte{0x16, 0x03, 0x01, 0x01, 0x00}); err != nil {
				t.Fatal(err)
			}
			_ = raw.SetReadDeadline(time.Now().Add(bound))
			if b, err := io.ReadAll(raw); err != nil {
				t.Errorf("a stalled handshake: read %q, %v; want the server to close", b, err)
			}
			raw.Close()

			// Every connection opened a Conn on its owner, and closed it.
			for i := range 2 {
				hs.h[i].waitCounts(t, "every OnClose", func(o, c int) bool { return o == opened[i] && c == opened[i] })
			}
			if got := waitFDs(t, fdsBefore); got > fdsBefore {
				t.Errorf("%d descriptors open, %d before", got, fdsBefore)
			}
			if extra := newGoroutines(gBefore, settle); len(extra) > 0 {
				t.Errorf("%d goroutines more than before:\n%s", len(extra), strings.Join(extra, "\n\n"))
			}
			hs.stopAll()
			hs.h[0].checkBalanced(t)
			hs.h[1].checkBalanced(t)
		})
	}
}
