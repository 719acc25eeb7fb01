package handoff

import (
	"bufio"
	"errors"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAckAndUnacked: the sender keeps every socket it sent until the
// receiver acknowledges it; when the receiver dies, the ones it never
// acknowledged come back from Unacked, oldest first, each with its
// message and a socket that still reaches its client.
func TestAckAndUnacked(t *testing.T) {
	la, lb := linkPair(t)
	errs := make(chan error, 1)
	go func() { // the sender's receiver: it takes the acknowledgements
		_, _, _, err := la.Receive(NewBuffers())
		errs <- err
	}()
	var clients []io.Reader
	msgs := []string{"one", "two", "three", "four"}
	for _, m := range msgs {
		c, s := tcpPair(t)
		fd := fdOf(t, s)
		s.Close()
		if err := la.TrySend([]byte(m), fd); err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		clients = append(clients, bufio.NewReader(c))
	}
	if n := la.PendingCount(); n != len(msgs) {
		t.Fatalf("%d pending after %d sends", n, len(msgs))
	}
	b := NewBuffers()
	var seqs []uint32
	for range msgs {
		_, fd, seq, err := lb.Receive(b)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd) // the receiver died before it opened any
		seqs = append(seqs, seq)
	}
	for _, i := range []int{0, 2} {
		if err := lb.Ack(seqs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); la.PendingCount() != 2; {
		if time.Now().After(deadline) {
			t.Fatalf("%d pending after two acknowledgements, want 2", la.PendingCount())
		}
		time.Sleep(time.Millisecond)
	}
	lb.Close() // the receiver dies
	if err := <-errs; !errors.Is(err, io.EOF) {
		t.Fatalf("sender's Receive: %v, want EOF", err)
	}
	un := la.Unacked()
	if len(un) != 2 || string(un[0].Msg) != "two" || string(un[1].Msg) != "four" {
		t.Fatalf("unacknowledged %+v, want two and four", un)
	}
	for i, p := range un {
		if _, err := unix.Write(p.FD, []byte("still here\n")); err != nil {
			t.Fatalf("%s: write to the kept socket: %v", p.Msg, err)
		}
		unix.Close(p.FD)
		line, err := clients[1+2*i].(*bufio.Reader).ReadString('\n')
		if err != nil || line != "still here\n" {
			t.Fatalf("%s: the client reads %q, %v", p.Msg, line, err)
		}
	}
	if err := la.TrySend([]byte("late"), 0); !errors.Is(err, ErrPeerGone) {
		t.Fatalf("TrySend after Unacked: %v, want ErrPeerGone", err)
	}
}
