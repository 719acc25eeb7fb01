package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/proctest"
	"github.com/subordinate/subordinate/internal/tls13"
)

// TestNoLeaksAfterManyTLSHandoffs: TLS 1.3 connections worker 0
// terminates for keys of worker 1, handed off with their sessions, are
// all served by worker 1 (echo, the handler's summary), counted as hand-
// offs, and leave no descriptor and no goroutine behind once closed: the
// sender's duplicates go at the acknowledgements, the handshakes'
// goroutines end.
func TestNoLeaksAfterManyTLSHandoffs(t *testing.T) {
	const conns = 100
	hs := newHarness(t, ForwardHandoff, nil)
	hs.enableTLS()
	hs.cfg.ForwardTLS = ForwardTLSHandoff
	hs.startBoth()
	run := func(n int, tag string) {
		for i := 0; i < n; i++ {
			key := keyFor(1, tag, i)
			c := hs.dialTLS(t, hs.ownTLS[0], key, []byte("early|"))
			if in := c.readInfo(t); in["shard"] != "1" || in["via"] != "0" || in["relayed"] != "false" || in["fwd"] != "true" {
				t.Fatalf("connection %d: info %v, want shard 1 via 0, handed off", i, in)
			}
			c.expect(t, "early|")
			c.echo(t, "after the hand-off\n")
			c.Close()
		}
	}
	run(10, "warm") // gnet's buffers, the links
	hs.h[1].waitCounts(t, "the warm-up's OnClose", func(o, c int) bool { return o == 10 && c == 10 })
	fdsRunning := countFDs(t)
	gRunning := goroutines()

	run(conns, "tls-handoff")
	hs.h[1].waitCounts(t, "every OnClose", func(o, c int) bool { return o == 10+conns && c == o })
	if n := waitFDs(t, fdsRunning); n > fdsRunning {
		t.Errorf("after %d TLS sessions handed off: %d descriptors open, %d before them", conns, n, fdsRunning)
	}
	if extra := newGoroutines(gRunning, settle); len(extra) > 0 {
		t.Errorf("after %d TLS sessions handed off: %d goroutines more than before them:\n%s", conns, len(extra), strings.Join(extra, "\n\n"))
	}
	if o, _ := hs.h[0].counts(); o != 0 {
		t.Errorf("shard 0 opened %d connections, want none (all were handed off)", o)
	}
	if s := hs.rt[0].stats(context.Background()); s.Forwarded["handoff"] != 10+conns || s.Forwarded["relay"] != 0 {
		t.Errorf("shard 0 forwarded %v, want %d hand-offs and no relay", s.Forwarded, 10+conns)
	}
	hs.stopAll()
	hs.h[0].checkBalanced(t)
	hs.h[1].checkBalanced(t)
}

// TestSessionRefusal: a client whose TLS 1.3 session was handed off and
// is then refused (the owner busy, or gone past OwnerWait) reads the
// -ERR line and close_notify under its session's keys, from bytes the
// refusing worker wrote without a TLS connection of its own.
func TestSessionRefusal(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, ForwardHandoff, nil)
	hs.startBoth()
	certFile, keyFile, roots := proctest.SelfSigned(t, "127.0.0.1")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	clientGot := make(chan string, 1)
	go func() {
		if c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}); err == nil {
			fmt.Fprintf(c, "room\nrest")
			b, err := io.ReadAll(c)
			clientGot <- fmt.Sprintf("%q %v", b, err)
			return
		}
		clientGot <- "no connection"
	}()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}})
	line, err := bufio.NewReader(io.LimitReader(tc, 5)).ReadString('\n')
	if err != nil || line != "room\n" {
		t.Fatalf("key line %q, %v", line, err)
	}
	st, raw, plain, err := tls13.Export(tc)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := frame.AppendHandoff(nil, &frame.Handoff{Key: []byte("room"), Early: raw, Session: &frame.TLSSession{
		Suite: st.Suite, ClientSecret: st.ClientSecret, ServerSecret: st.ServerSecret,
		ClientSeq: st.ClientSeq, ServerSeq: st.ServerSeq, Info: TLSInfo{Version: tls.VersionTLS13}, Plain: plain,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(hs.rt[0].refusalOf(msg, formLine, "shard 1 unavailable")); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%q %v", frame.AppendError(nil, "shard 1 unavailable"), nil)
	if got := <-clientGot; got != want {
		t.Fatalf("the client read %s, want %s", got, want)
	}
}
