package handoff

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func linkPair(t *testing.T) (*Link, *Link) {
	t.Helper()
	a, b, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	la, err := NewLink(a)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := NewLink(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { la.Close(); lb.Close() })
	return la, lb
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client net.Conn, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); s.Close() })
	return client, s.(*net.TCPConn)
}

func fdOf(t *testing.T, c *net.TCPConn) (fd int) {
	t.Helper()
	f, err := c.File() // a duplicate
	if err != nil {
		t.Fatal(err)
	}
	fd, err = unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestSocketCrosses: the receiver gets the message and a working socket;
// the sender's copy can be closed without the client noticing.
func TestSocketCrosses(t *testing.T) {
	la, lb := linkPair(t)
	client, server := tcpPair(t)
	fd := fdOf(t, server)
	if err := la.TrySend([]byte("hello"), fd); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	server.Close() // the sender forgets the connection
	msg, rfd, _, err := lb.Receive(NewBuffers())
	if err != nil || string(msg) != "hello" {
		t.Fatalf("Receive: %q, %v", msg, err)
	}
	got := os.NewFile(uintptr(rfd), "received")
	defer got.Close()
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(got, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read on the received socket: %q, %v", buf, err)
	}
	if _, err := got.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read: %q, %v", buf, err)
	}
}

// TestBadMessages: datagrams without exactly one socket are refused and
// their descriptors closed; the link goes on.
func TestBadMessages(t *testing.T) {
	la, lb := linkPair(t)
	raw := func(data []byte, fds ...int) {
		t.Helper()
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		if _, _, err := la.uc.WriteMsgUnix(data, oob, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, s1 := tcpPair(t)
	_, s2 := tcpPair(t)
	f1, f2 := fdOf(t, s1), fdOf(t, s2)
	raw([]byte("no"))
	raw([]byte("two sockets"), f1, f2)
	unix.Close(f1)
	unix.Close(f2)
	b := NewBuffers()
	for _, want := range []string{"no link header", "kind"} {
		if _, fd, _, err := lb.Receive(b); !errors.Is(err, ErrBadMessage) || fd != -1 {
			t.Fatalf("Receive: fd %d, %v; want ErrBadMessage (%s)", fd, err, want)
		}
	}
	_, s3 := tcpPair(t)
	f3 := fdOf(t, s3)
	if err := la.TrySend([]byte("good"), f3); err != nil {
		t.Fatal(err)
	}
	unix.Close(f3)
	if msg, fd, _, err := lb.Receive(b); err != nil || string(msg) != "good" {
		t.Fatalf("after bad messages: %q, %v", msg, err)
	} else {
		unix.Close(fd)
	}
}

// TestFullAndGone: a peer that does not receive fills its socket
// (ErrFull, Send gives up at its deadline); a peer that closed its end
// gives ErrPeerGone, and the receiver sees EOF when the sender closes.
func TestFullAndGone(t *testing.T) {
	la, lb := linkPair(t)
	_, s := tcpPair(t)
	fd := fdOf(t, s)
	defer unix.Close(fd)
	msg := make([]byte, 4096)
	var err error
	for i := 0; i < 100000; i++ {
		if err = la.TrySend(msg, fd); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) {
		t.Fatalf("TrySend to a peer that never receives: %v, want ErrFull", err)
	}
	if err := la.Send(msg, fd, time.Now().Add(50*time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Send to a full peer: %v, want a deadline error", err)
	}
	lb.Close()
	if err := la.TrySend(msg, fd); !errors.Is(err, ErrPeerGone) {
		t.Fatalf("TrySend to a closed peer: %v, want ErrPeerGone", err)
	}

	lc, ld := linkPair(t)
	lc.Close()
	if _, _, _, err := ld.Receive(NewBuffers()); !errors.Is(err, io.EOF) {
		t.Fatalf("Receive after the peer closed: %v, want io.EOF", err)
	}
}

// TestLinksWait: Wait returns when a link is set, Get sees it, Down drops
// only the current link, Close wakes the waiters.
func TestLinksWait(t *testing.T) {
	ls := NewLinks(3)
	la, lb := linkPair(t)
	got := make(chan *Link, 1)
	go func() {
		l, _ := ls.Wait(context.Background(), 1)
		got <- l
	}()
	ls.Set(1, la)
	if l := <-got; l != la || ls.Get(1) != la {
		t.Fatalf("Wait gave %p, Get %p; want %p", l, ls.Get(1), la)
	}
	if ls.Down(1, lb) {
		t.Fatal("Down of a link that is not the current one dropped it")
	}
	if !ls.Down(1, la) || ls.Get(1) != nil {
		t.Fatal("Down of the current link did not drop it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := ls.Wait(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait for a peer that is down: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ls.Wait(context.Background(), 2)
		done <- err
	}()
	ls.Close()
	if err := <-done; !errors.Is(err, ErrPeerGone) {
		t.Fatalf("Wait across Close: %v, want ErrPeerGone", err)
	}
}
