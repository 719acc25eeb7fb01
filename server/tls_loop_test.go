package server

// Local TLS connections on the event loop (tls_loop.go): what crypto/tls
// must keep doing for the design to hold, and the Conn it gives handlers.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
)

// gateConn is a transport whose reads are rationed: allow < 0 lets every
// read through, allow >= 0 lets that many more bytes through and then
// returns errWouldBlock, as tlsTransport does on the loop.
type gateConn struct {
	net.Conn
	mu    sync.Mutex
	allow int
}

func (g *gateConn) set(n int) { g.mu.Lock(); g.allow = n; g.mu.Unlock() }

func (g *gateConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.allow == 0 {
		return 0, errWouldBlock
	}
	if g.allow > 0 && len(p) > g.allow {
		p = p[:g.allow]
	}
	n, err := g.Conn.Read(p)
	if g.allow > 0 {
		g.allow -= n
	}
	return n, err
}

// TestTLSTemporaryErrorsNotSticky pins the crypto/tls behaviour the loop
// backend rests on: after the handshake, a transport error whose
// Temporary() is true is returned by Read but not recorded, and a
// partial record read before it stays buffered, so the next Read, once
// the bytes are there, succeeds. If a future crypto/tls makes such
// errors sticky, this fails, and local TLS connections must go back to a
// goroutine.
func TestTLSTemporaryErrorsNotSticky(t *testing.T) {
	t.Parallel()
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			certFile, keyFile, roots := proctest.SelfSigned(t, "127.0.0.1")
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			ln := listenTCP(t)
			defer ln.Close()
			cc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			sc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			_ = cc.SetDeadline(time.Now().Add(bound))
			_ = sc.SetDeadline(time.Now().Add(bound))
			gate := &gateConn{Conn: sc, allow: -1}
			srv := tls.Server(gate, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: v})
			cli := tls.Client(cc, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MaxVersion: v})
			hs := make(chan error, 1)
			go func() { hs <- srv.HandshakeContext(context.Background()) }()
			if err := cli.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-hs; err != nil {
				t.Fatal(err)
			}

			buf := make([]byte, 64)
			gate.set(0)
			if n, err := srv.Read(buf); n != 0 || !isWouldBlock(err) {
				t.Fatalf("Read with nothing buffered: %d, %v; want the transport's temporary error", n, err)
			}
			if _, err := cli.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			gate.set(3) // part of the record header only
			if n, err := srv.Read(buf); n != 0 || !isWouldBlock(err) {
				t.Fatalf("Read of a partial record: %d, %v; want the temporary error", n, err)
			}
			gate.set(-1)
			n, err := srv.Read(buf)
			if err != nil || string(buf[:n]) != "hello" {
				t.Fatalf("Read after temporary errors: %q, %v; want \"hello\": crypto/tls kept the error or lost the partial record", buf[:n], err)
			}
			if _, err := srv.Write([]byte("back")); err != nil {
				t.Fatalf("Write after temporary read errors: %v", err)
			}
			if n, err := io.ReadFull(cli, buf[:4]); err != nil || string(buf[:n]) != "back" {
				t.Fatalf("client read %q, %v", buf[:n], err)
			}
		})
	}
}

// tlsLoopHarness starts two shards with TLS listeners whose certificate
// also names sni.example, offering ALPN sub/1, and whose handlers (hooks
// set by the caller first) see every Conn.
func tlsLoopHarness(t *testing.T, mode string, setup func(hs *harness)) *harness {
	hs := newHarness(t, mode, func(c *Config) { c.TLS.ALPN = []string{"sub/1"} })
	hs.enableTLS()
	certFile, keyFile, roots := proctest.SelfSigned(t, "127.0.0.1", "sni.example")
	hs.cfg.TLS.Certs, hs.roots = []CertFile{{Cert: certFile, Key: keyFile}}, roots
	if setup != nil {
		setup(hs)
	}
	hs.startBoth()
	return hs
}

// offLoopConns returns how many open Conns of shard i are not backed by
// a gnet connection (streams, hijacked), read on its loop.
func offLoopConns(t *testing.T, hs *harness, i int) int {
	t.Helper()
	n := make(chan int, 1)
	r := hs.rt[i]
	if err := r.shard.run(func() { n <- len(r.offLoop) }); err != nil {
		t.Fatal(err)
	}
	return <-n
}

// serverGoroutines counts this package's goroutines other than the
// tests' own.
func serverGoroutines() int {
	n := 0
	for _, g := range goroutines() {
		if strings.Contains(g, "subordinate/subordinate/server.") && !strings.Contains(g, "testing.tRunner") {
			n++
		}
	}
	return n
}

// TestTLSLoopConn: a local TLS connection, TLS 1.2 and 1.3, is served on
// the loop with the same Conn API: its handler sees SNI and ALPN, the
// bytes read past the preamble, a several-MiB echo, then the client's
// close_notify as OnEOF; Hijack works on it.
func TestTLSLoopConn(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		hs := tlsLoopHarness(t, mode, func(hs *harness) {
			hs.h[0].open = func(c *Conn) {
				if strings.HasPrefix(string(c.Key()), "hj-") {
					defaultOpen(c)
					return
				}
				i := c.TLS()
				fmt.Fprintf(c, "%s sni=%s alpn=%s loop=%t\n", tls.VersionName(i.Version), i.ServerName, i.ALPN, c.tl != nil)
			}
		})
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			cfg := &tls.Config{RootCAs: hs.roots, ServerName: "sni.example", NextProtos: []string{"sub/1"}, MaxVersion: v}
			tc, err := tls.DialWithDialer(&net.Dialer{Timeout: bound}, "tcp", hs.ownTLS[0], cfg)
			if err != nil {
				t.Fatal(err)
			}
			_ = tc.SetDeadline(time.Now().Add(bound))
			key := keyFor(0, "loop", int(v))
			if _, err := io.WriteString(tc, key+"\nearly|"); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(tc)
			line, _ := r.ReadString('\n')
			want := fmt.Sprintf("%s sni=sni.example alpn=sub/1 loop=true\n", tls.VersionName(v))
			if line != want {
				t.Fatalf("OnOpen wrote %q, want %q", line, want)
			}
			msg := bytes.Repeat([]byte(fmt.Sprintf("large write %x ", v)), (4<<20)/16)
			go func() {
				_, _ = tc.Write(msg)
				_ = tc.CloseWrite() // close_notify: the handler's OnEOF closes
			}()
			back, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(back, append([]byte("early|"), msg...)) {
				t.Fatalf("%s echo of %d bytes: got %d, %v", tls.VersionName(v), len(msg)+6, len(back), err)
			}
			tc.Close()
		}

		c := hs.dialTLS(t, hs.ownTLS[0], keyFor(0, "hj-tls", 0), []byte("before hijack|"))
		if in := c.readInfo(t); in["tls"] != "true" || in["shard"] != "0" {
			t.Fatalf("hijacked TLS connection: info %v", in)
		}
		c.expect(t, "before hijack|")
		c.echo(t, "after hijack\n")
		c.Close()

		hs.h[0].waitCounts(t, "every OnClose", func(o, c int) bool { return o == c && o == 3 })
		hs.stopAll()
		hs.h[0].checkBalanced(t)
	})
}

// TestTLSLoopNoGoroutinePerConn: established local TLS connections hold
// no goroutine and are not off the loop: with 40 of them open, the
// server has no more goroutines than with one.
func TestTLSLoopNoGoroutinePerConn(t *testing.T) {
	hs := tlsLoopHarness(t, ForwardRelay, nil)
	first := hs.dialTLS(t, hs.ownTLS[0], keyFor(0, "idle", 0), nil)
	first.readInfo(t)
	first.echo(t, "warm\n")
	waitFor(t, "the handshake goroutine to end", func() bool { return offLoopConns(t, hs, 0) == 0 })
	base := serverGoroutines()
	const n = 40
	for i := range n {
		c := hs.dialTLS(t, hs.ownTLS[0], keyFor(0, "idle", i+1), nil)
		c.readInfo(t)
		c.echo(t, fmt.Sprintf("conn %d\n", i))
	}
	// The handshakes' goroutines end once gnet has the sockets back.
	waitFor(t, fmt.Sprintf("no more than %d server goroutines with %d TLS connections (%d)", base, n+1, serverGoroutines()),
		func() bool { return serverGoroutines() <= base })
	if off := offLoopConns(t, hs, 0); off != 0 {
		t.Fatalf("%d TLS Conns off the loop, want 0", off)
	}
	// And no decrypted-input buffer of their own: they consumed it all.
	hs.h[0].mu.Lock()
	var live []*Conn
	for c := range hs.h[0].live {
		live = append(live, c)
	}
	hs.h[0].mu.Unlock()
	held := make(chan int, 1)
	if err := hs.rt[0].shard.run(func() {
		n := 0
		for _, c := range live {
			if c.tl == nil || cap(c.tl.in) > 0 {
				n++
			}
		}
		held <- n
	}); err != nil {
		t.Fatal(err)
	}
	if n := <-held; n != 0 {
		t.Fatalf("%d idle TLS Conns hold an input buffer (or are not on the loop)", n)
	}
	if opens, closes := hs.h[0].counts(); opens-closes != n+1 {
		t.Fatalf("%d Conns open, want %d", opens-closes, n+1)
	}
	hs.stopAll()
	hs.h[0].checkBalanced(t)
}

// TestTLSLoopFIN: a client that sends close_notify and then its FIN gets
// the reply its handler writes after both: the Conn leaves the loop (gnet
// closes at FIN) and goes on as a stream over the same tls.Conn.
func TestTLSLoopFIN(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hs := tlsLoopHarness(t, ForwardRelay, func(hs *harness) {
		hs.h[0].eof = func(c *Conn) {
			go func() {
				<-release
				_ = c.Shard().Run(func() {
					_, _ = c.Write([]byte("late reply\n"))
					_ = c.Close()
				})
			}()
		}
	})
	c := hs.dialTLS(t, hs.ownTLS[0], keyFor(0, "fin", 0), []byte("request|"))
	c.readInfo(t)
	c.expect(t, "request|")
	tc := c.Conn.(*tls.Conn)
	if err := tc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := tc.NetConn().(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Conn to leave the loop at the client's FIN", func() bool { return offLoopConns(t, hs, 0) == 1 })
	close(release)
	if got := string(c.readAll(t)); got != "late reply\n" {
		t.Fatalf("after FIN: %q, want the late reply", got)
	}
	hs.h[0].waitCounts(t, "OnClose", func(o, c int) bool { return o == 1 && c == 1 })
	if err, _ := hs.h[0].errOf(keyFor(0, "fin", 0)); err != nil {
		t.Fatalf("OnClose: %v, want nil", err)
	}
	hs.stopAll()
	hs.h[0].checkBalanced(t)
}

// TestTLSLoopNoLeaks: TLS connections on the loop, closed every way (the
// client's close_notify, its FIN, a reset, a hijack), leave no
// descriptor and no goroutine behind while the shards run on.
func TestTLSLoopNoLeaks(t *testing.T) {
	hs := tlsLoopHarness(t, ForwardRelay, nil)
	warm := hs.dialTLS(t, hs.ownTLS[0], keyFor(0, "warm", 0), nil)
	warm.readInfo(t)
	warm.Close()
	hs.h[0].waitCounts(t, "the first OnClose", func(o, c int) bool { return o == 1 && c == 1 })
	fdsBefore := countFDs(t)
	gBefore := goroutines()
	const n = 12
	for i := range n {
		tag := []string{"notify", "fin", "reset", "hj-leak"}[i%4]
		c := hs.dialTLS(t, hs.ownTLS[0], keyFor(0, tag, i), nil)
		c.readInfo(t)
		c.echo(t, "x\n")
		tc := c.Conn.(*tls.Conn)
		switch tag {
		case "notify":
			_ = tc.CloseWrite()
			_ = c.readAll(t)
		case "fin":
			_ = tc.NetConn().(*net.TCPConn).CloseWrite()
			_ = c.readAll(t)
		case "reset":
			_ = tc.NetConn().(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}
	hs.h[0].waitCounts(t, "every OnClose", func(o, c int) bool { return o == n+1 && c == n+1 })
	if got := waitFDs(t, fdsBefore); got > fdsBefore {
		t.Errorf("%d descriptors open, %d before", got, fdsBefore)
	}
	if extra := newGoroutines(gBefore, settle); len(extra) > 0 {
		t.Errorf("%d goroutines more than before:\n%s", len(extra), strings.Join(extra, "\n\n"))
	}
	hs.stopAll()
	hs.h[0].checkBalanced(t)
}

// TestTLSLoopReadAPI: a handler that consumes only whole lines (Peek,
// Next, Discard, Buffered) keeps the rest of what came, across reads and
// TLS records, in order.
func TestTLSLoopReadAPI(t *testing.T) {
	t.Parallel()
	hs := tlsLoopHarness(t, ForwardRelay, func(hs *harness) {
		hs.h[0].open = func(c *Conn) {}
		hs.h[0].data = func(c *Conn) {
			for {
				b, _ := c.Peek(-1)
				i := bytes.IndexByte(b, '\n')
				if i < 0 {
					return
				}
				if n := c.Buffered(); n != len(b) {
					fmt.Fprintf(c, "Buffered %d, Peek %d\n", n, len(b))
				}
				line, err := c.Next(i)
				if err != nil {
					fmt.Fprintf(c, "Next: %v\n", err)
					return
				}
				fmt.Fprintf(c, "line %q\n", line)
				if n, _ := c.Discard(1); n != 1 {
					fmt.Fprintf(c, "Discard: %d\n", n)
				}
			}
		}
	})
	c := hs.dialTLS(t, hs.ownTLS[0], keyFor(0, "lines", 0), []byte("fir"))
	var want strings.Builder
	for i, part := range []string{"st\nsec", "ond\n", "th", "ird\nfourth\nfif", "th\n"} {
		if _, err := io.WriteString(c, part); err != nil { // one TLS record each
			t.Fatal(err)
		}
		if i == 1 {
			want.WriteString("line \"first\"\nline \"second\"\n")
			c.expect(t, want.String())
			want.Reset()
		}
	}
	c.expect(t, "line \"third\"\nline \"fourth\"\nline \"fifth\"\n")
	c.Close()
}
