package gnetx

import (
	"errors"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// connectedFD returns the server side of a new connection to ln as a
// non-blocking descriptor of its own (not in Go's poller), and the client.
func connectedFD(t *testing.T, ln net.Listener) (int, net.Conn) {
	t.Helper()
	cl := dial(t, ln.Addr())
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	rc, err := sc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	rc.Control(func(s uintptr) { fd, err = unix.Dup(int(s)) })
	if err != nil {
		t.Fatal(err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	return fd, cl
}

// adopt runs Adopt on the loop and returns its error.
func adopt(t *testing.T, e *Engine, s Socket, ctx any) error {
	t.Helper()
	done := make(chan error, 1)
	if err := e.Run(func() { done <- e.Adopt(s, ctx) }); err != nil {
		t.Fatal(err)
	}
	return <-done
}

// TestAdopt: a TCP and a Unix socket accepted elsewhere become
// connections of the loop, as if it had accepted them: OnOpen sees the
// context given and the client's address, the handler serves them, and
// their descriptors are closed with them (none left over).
func TestAdopt(t *testing.T) {
	tcp, tfd := masterListener(t, "tcp", "127.0.0.1:0")
	h := &echo{}
	e := start(t, h, Listener{FD: tfd, Addr: tcp.Addr()})
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ux, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ux.Close()

	// A connection the loop accepts first: the engine has settled (its
	// anchor's spare descriptor is closed a moment after it starts).
	warm := dial(t, tcp.Addr())
	roundTrip(t, warm, "warm")
	warm.Close()
	waitFor(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.closed == 1
	})
	h.mu.Lock()
	h.ctxs, h.remotes, h.listeners = nil, nil, nil
	h.mu.Unlock()

	base := countFDs(t)
	for i, ln := range []net.Listener{other, ux, other} {
		fd, cl := connectedFD(t, ln)
		s, err := Inspect(fd)
		if err != nil {
			t.Fatal(err)
		}
		if err := adopt(t, e, s, i); err != nil {
			t.Fatal(err)
		}
		roundTrip(t, cl, "adopted")
		roundTrip(t, cl, "twice")
		cl.Close()
	}
	waitFor(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.closed == 4
	})
	if n := countFDs(t); n != base {
		t.Errorf("%d descriptors open after the adopted connections closed, %d before", n, base)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range h.ctxs {
		if c != i {
			t.Errorf("connection %d: OnOpen saw context %v, want %d", i, c, i)
		}
	}
	if len(h.remotes) != 3 || h.remotes[0] == "" || h.remotes[0] == h.remotes[2] {
		t.Errorf("remote addresses in OnOpen %q: want the two TCP clients' ports and the Unix peer", h.remotes)
	}
	for _, l := range h.listeners {
		if l != -1 {
			t.Errorf("Listener of an adopted connection is %d, want -1", l)
		}
	}
}

// TestInspectReset: a socket whose client reset it before it was
// adopted is reported as not connected, with nothing to adopt.
func TestInspectReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fd, cl := connectedFD(t, ln)
	defer unix.Close(fd)
	cl.(*net.TCPConn).SetLinger(0)
	cl.Close()
	waitFor(t, func() bool {
		_, err := unix.Read(fd, make([]byte, 1))
		return errors.Is(err, unix.ECONNRESET)
	})
	if _, err := Inspect(fd); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Inspect of a reset socket: %v, want ErrNotConnected", err)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
	}
}
