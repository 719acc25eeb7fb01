package ctl

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

func pair(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	a, b, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	ca, err := New(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := New(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

// pipes returns n pipes; the test passes the write ends and checks that
// what it writes through each received descriptor comes out of the
// matching read end.
func pipes(t *testing.T, n int) (r, w []*os.File) {
	t.Helper()
	for i := 0; i < n; i++ {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pr.Close(); pw.Close() })
		r, w = append(r, pr), append(w, pw)
	}
	return r, w
}

func fdsOf(fs []*os.File) []int {
	var fds []int
	for _, f := range fs {
		fds = append(fds, int(f.Fd()))
	}
	return fds
}

func checkPassed(t *testing.T, got []int, readEnds []*os.File) {
	t.Helper()
	if len(got) != len(readEnds) {
		t.Fatalf("got %d descriptors, want %d", len(got), len(readEnds))
	}
	for i, fd := range got {
		msg := []byte{byte(i), byte(i >> 8)}
		if _, err := syscall.Write(fd, msg); err != nil {
			t.Fatalf("write through descriptor %d: %v", i, err)
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(readEnds[i], buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, msg) {
			t.Fatalf("descriptor %d leads to the wrong pipe: read %v, want %v", i, buf, msg)
		}
		flags, err := fcntlGetfd(fd)
		if err != nil || flags&syscall.FD_CLOEXEC == 0 {
			t.Fatalf("descriptor %d not close-on-exec (flags %d, %v)", i, flags, err)
		}
		syscall.Close(fd)
	}
}

func TestInitWithDescriptors(t *testing.T) {
	master, worker := pair(t)
	r, w := pipes(t, 5)
	cfg := json.RawMessage(`{"frame":"line"}`)
	in := &Message{Type: TypeInit, Init: &Init{
		Shard: 2, Workers: 4, Config: cfg, Secret: []byte("s3cret\x00\xff"),
		Listeners: []Listener{{Network: "tcp", Address: "127.0.0.1:7000", URL: "tcp://127.0.0.1:7000"}, {Network: "unix", Address: "/tmp/x.sock"}},
		Peers:     []int{0, 1, 3},
	}, FDs: fdsOf(w)}
	if err := master.Send(in); err != nil {
		t.Fatal(err)
	}
	m, err := worker.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != TypeInit || m.Init.Shard != 2 || m.Init.Workers != 4 || string(m.Init.Secret) != "s3cret\x00\xff" ||
		len(m.Init.Listeners) != 2 || m.Init.Listeners[1].Address != "/tmp/x.sock" || len(m.Init.Peers) != 3 ||
		!bytes.Equal(m.Init.Config, cfg) {
		t.Fatalf("init came back different: %+v", m.Init)
	}
	checkPassed(t, m.FDs, r)
}

func TestSequenceBothWays(t *testing.T) {
	master, worker := pair(t)
	r, w := pipes(t, 1)
	deadline := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	fds := fdsOf(w)
	sent := make(chan error, 1)
	go func() {
		err := master.Send(&Message{Type: TypePeer, Peer: &Peer{Shard: 3}, FDs: fds})
		if err == nil {
			err = master.Send(&Message{Type: TypeDrain, Drain: &Drain{Deadline: deadline}})
		}
		if err == nil {
			err = master.Send(&Message{Type: TypeStop})
		}
		sent <- err
	}()
	defer func() {
		if err := <-sent; err != nil {
			t.Error(err)
		}
	}()
	m, err := worker.Receive()
	if err != nil || m.Type != TypePeer || m.Peer.Shard != 3 {
		t.Fatalf("peer: %+v, %v", m, err)
	}
	checkPassed(t, m.FDs, r)
	m, err = worker.Receive()
	if err != nil || m.Type != TypeDrain || !m.Drain.Deadline.Equal(deadline) || len(m.FDs) != 0 {
		t.Fatalf("drain: %+v, %v", m, err)
	}
	m, err = worker.Receive()
	if err != nil || m.Type != TypeStop {
		t.Fatalf("stop: %+v, %v", m, err)
	}
	if err := worker.Send(&Message{Type: TypeReady}); err != nil {
		t.Fatal(err)
	}
	m, err = master.Receive()
	if err != nil || m.Type != TypeReady {
		t.Fatalf("ready: %+v, %v", m, err)
	}
}

// TestManyDescriptors passes more descriptors than one sendmsg may carry
// (Linux: SCM_MAX_FD = 253), in several messages back to back.
func TestManyDescriptors(t *testing.T) {
	master, worker := pair(t)
	r, w := pipes(t, 600)
	fds := fdsOf(w)
	sent := make(chan error, 1)
	go func() {
		err := master.Send(&Message{Type: TypeInit, Init: &Init{Workers: 1}, FDs: fds[:520]})
		if err == nil {
			err = master.Send(&Message{Type: TypePeer, Peer: &Peer{Shard: 1}, FDs: fds[520:521]})
		}
		if err == nil {
			err = master.Send(&Message{Type: TypeStop, FDs: fds[521:]})
		}
		sent <- err
	}()
	defer func() {
		if err := <-sent; err != nil {
			t.Error(err)
		}
	}()
	m, err := worker.Receive()
	if err != nil {
		t.Fatal(err)
	}
	checkPassed(t, m.FDs, r[:520])
	m, err = worker.Receive()
	if err != nil || m.Type != TypePeer {
		t.Fatal(m, err)
	}
	checkPassed(t, m.FDs, r[520:521])
	m, err = worker.Receive()
	if err != nil || m.Type != TypeStop {
		t.Fatal(m, err)
	}
	checkPassed(t, m.FDs, r[521:])
}

func TestConcurrentSends(t *testing.T) {
	master, worker := pair(t)
	const senders, each = 8, 50
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := master.Send(&Message{Type: TypePeer, Peer: &Peer{Shard: s}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := make([]int, senders)
	for i := 0; i < senders*each; i++ {
		m, err := worker.Receive()
		if err != nil {
			t.Fatal(err)
		}
		seen[m.Peer.Shard]++
	}
	wg.Wait()
	for s, n := range seen {
		if n != each {
			t.Fatalf("sender %d: %d messages, want %d", s, n, each)
		}
	}
}

func TestEOF(t *testing.T) {
	master, worker := pair(t)
	master.Close()
	if _, err := worker.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("Receive after the peer closed: %v, want EOF", err)
	}
	if err := master.Send(&Message{Type: TypeStop}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
}

func TestReceiveDeadline(t *testing.T) {
	_, worker := pair(t)
	worker.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := worker.Receive(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
}

func TestTooLarge(t *testing.T) {
	master, worker := pair(t)
	big := &Message{Type: TypeInit, Init: &Init{Secret: make([]byte, MaxMessageSize)}}
	if err := master.Send(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Send: %v, want ErrTooLarge", err)
	}
	// A peer that claims a huge message is refused before it is read.
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], MaxMessageSize+1)
	if _, err := master.uc.Write(hdr[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := worker.Receive(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Receive: %v, want ErrTooLarge", err)
	}
}

func TestMissingDescriptors(t *testing.T) {
	master, worker := pair(t)
	body := []byte(`{"type":"peer","peer":{"shard":1},"nfd":2}`)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := master.uc.Write(append(frame, body...)); err != nil {
		t.Fatal(err)
	}
	if _, err := worker.Receive(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("got %v, want ErrProtocol", err)
	}
}

func TestGarbage(t *testing.T) {
	master, worker := pair(t)
	frame := binary.BigEndian.AppendUint32(nil, 3)
	if _, err := master.uc.Write(append(frame, "{{{"...)); err != nil {
		t.Fatal(err)
	}
	if _, err := worker.Receive(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("got %v, want ErrProtocol", err)
	}
}

// TestProtocolVersion: the version travels with a message, and
// CheckProtocol accepts exactly ProtocolVersion: another version, or none
// (a program from before versions: the field is absent), is refused.
func TestProtocolVersion(t *testing.T) {
	master, worker := pair(t)
	if err := master.Send(&Message{Type: TypeInit, Protocol: ProtocolVersion, Init: &Init{Workers: 1}}); err != nil {
		t.Fatal(err)
	}
	m, err := worker.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckProtocol(m); err != nil {
		t.Fatalf("same version refused: %v", err)
	}
	for _, body := range []string{
		`{"type":"init","protocol":` + fmt.Sprint(ProtocolVersion+1) + `,"init":{"workers":1}}`,
		`{"type":"init","init":{"workers":1}}`,
	} {
		frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
		if _, err := master.uc.Write(append(frame, body...)); err != nil {
			t.Fatal(err)
		}
		m, err := worker.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckProtocol(m); !errors.Is(err, ErrVersion) {
			t.Errorf("%s: CheckProtocol = %v, want ErrVersion", body, err)
		}
	}
	// The worker's answer carries its version and reason.
	if err := worker.Send(&Message{Type: TypeRefused, Protocol: ProtocolVersion, Refused: &Refused{Reason: "no"}}); err != nil {
		t.Fatal(err)
	}
	m, err = master.Receive()
	if err != nil || m.Type != TypeRefused || m.Protocol != ProtocolVersion || m.Refused == nil || m.Refused.Reason != "no" {
		t.Fatalf("refused: %+v, %v", m, err)
	}
}
