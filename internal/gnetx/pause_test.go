package gnetx

import (
	"errors"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestPauseAccepting: while paused, the open connection is served and
// every new connection waits on the socket for another process (here the
// test accepts them on the master's copy); after ResumeAccepting the loop
// accepts again, on the same socket; a pause then a stop lets the socket
// go.
func TestPauseAccepting(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("pausing needs /proc/self/fdinfo")
	}
	tcp, tfd := masterListener(t, "tcp", "127.0.0.1:0")
	h := &echo{}
	e := start(t, h, Listener{FD: tfd, Addr: tcp.Addr()})
	old := dial(t, tcp.Addr())
	roundTrip(t, old, "before")
	onLoop := func(fn func() error) error {
		t.Helper()
		done := make(chan error, 1)
		if err := e.Run(func() { done <- fn() }); err != nil {
			t.Fatal(err)
		}
		return <-done
	}
	paused := func() error {
		if !e.Paused() {
			return errors.New("not paused")
		}
		return nil
	}

	for round := range 2 { // pause, resume, and again
		if err := onLoop(e.PauseAccepting); err != nil {
			t.Fatalf("round %d: PauseAccepting: %v", round, err)
		}
		if err := onLoop(e.PauseAccepting); err != nil {
			t.Fatalf("round %d: PauseAccepting twice: %v", round, err)
		}
		if err := onLoop(paused); err != nil {
			t.Fatal(err)
		}
		roundTrip(t, old, "paused")
		const n = 20
		for range n {
			dial(t, tcp.Addr())
		}
		tcp.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
		for i := range n {
			c, err := tcp.Accept()
			if err != nil {
				t.Fatalf("round %d: connection %d did not wait: %v (the loop still accepts?)", round, i, err)
			}
			c.Close()
		}
		h.mu.Lock()
		opened := h.opened
		h.mu.Unlock()
		if opened != 1+round {
			t.Fatalf("round %d: the loop opened %d connections while paused, want %d", round, opened, 1+round)
		}

		if err := onLoop(e.ResumeAccepting); err != nil {
			t.Fatalf("round %d: ResumeAccepting: %v", round, err)
		}
		if err := onLoop(paused); err == nil {
			t.Fatal("still paused after ResumeAccepting")
		}
		roundTrip(t, dial(t, tcp.Addr()), "resumed") // the loop accepts it
	}

	// Paused, then stopped: the socket is let go like a running one.
	if err := onLoop(e.PauseAccepting); err != nil {
		t.Fatal(err)
	}
	if err := onLoop(e.StopAccepting); err != nil {
		t.Fatalf("StopAccepting while paused: %v", err)
	}
	if err := onLoop(e.ResumeAccepting); err != nil {
		t.Fatalf("ResumeAccepting after StopAccepting: %v", err)
	}
	roundTrip(t, old, "still")
}
