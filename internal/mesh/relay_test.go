package mesh

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// relayed opens a stream from ms[0] to ms[1] and relays a fresh client
// socketpair onto it. It returns the client's end and the relay's result.
func relayed(t *testing.T, ms []*Mesh, writeTimeout time.Duration) (net.Conn, <-chan RelayResult) {
	t.Helper()
	st, err := ms[0].Open(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	client, server := socketPair(t)
	t.Cleanup(func() { client.Close() })
	res := make(chan RelayResult, 1)
	go func() { res <- Relay(server, st, writeTimeout) }()
	return client, res
}

func TestRelayClientHalfClose(t *testing.T) {
	checkLeaks(t)
	// The owner reads everything, then replies with what it got.
	ms, _ := newMeshes(t, 2, DefaultMeshConfig(), func(_ int, s *Stream) {
		defer s.Close()
		got, err := io.ReadAll(s)
		if err != nil {
			return
		}
		_, _ = s.Write(append([]byte("got:"), got...))
		_ = s.CloseWrite()
	})
	client, res := relayed(t, ms, 5*time.Second)
	msg := bytes.Repeat([]byte("request "), 20000)
	if _, err := client.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := client.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("got:"), msg...); !bytes.Equal(reply, want) {
		t.Fatalf("reply: %d bytes, want %d", len(reply), len(want))
	}
	r := recv(t, "relay", res)
	if r.Err != nil || r.ClientToStream != int64(len(msg)) || r.StreamToClient != int64(len(reply)) {
		t.Fatalf("relay result %+v", r)
	}
}

func TestRelayOwnerHalfClose(t *testing.T) {
	checkLeaks(t)
	// The owner greets and half-closes at once, then reads the client.
	heard := make(chan []byte, 1)
	ms, _ := newMeshes(t, 2, DefaultMeshConfig(), func(_ int, s *Stream) {
		defer s.Close()
		_, _ = s.Write([]byte("hello, then FIN"))
		_ = s.CloseWrite()
		got, _ := io.ReadAll(s)
		heard <- got
	})
	client, res := relayed(t, ms, 5*time.Second)
	greeting, err := io.ReadAll(client) // ends at the relayed FIN
	if err != nil || string(greeting) != "hello, then FIN" {
		t.Fatalf("greeting %q, %v", greeting, err)
	}
	// The client can still talk after the owner's half-close.
	if _, err := client.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	_ = client.(*net.UnixConn).CloseWrite()
	if got := recv(t, "owner to read", heard); string(got) != "still here" {
		t.Fatalf("owner heard %q", got)
	}
	if r := recv(t, "relay", res); r.Err != nil {
		t.Fatalf("relay: %+v", r)
	}
}

func TestRelayOwnerDies(t *testing.T) {
	checkLeaks(t)
	started := make(chan struct{}, 1)
	ms, links := newMeshes(t, 2, DefaultMeshConfig(), func(_ int, s *Stream) {
		defer s.Close()
		started <- struct{}{}
		_, _ = io.Copy(io.Discard, s)
	})
	client, res := relayed(t, ms, 5*time.Second)
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	recv(t, "stream accepted", started)
	links[1][0].Close() // the owner dies
	r := recv(t, "relay", res)
	if !errors.Is(r.Err, ErrPeerDown) {
		t.Errorf("relay to a dead owner ended with %v, want ErrPeerDown", r.Err)
	}
	// The client's connection is closed.
	if n, err := client.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("client read after owner death: %d, %v", n, err)
	}
}

// TestRelayFloodIsBounded: a client floods a forwarded connection whose
// owner never reads. What the client manages to write before its writes
// block for good is bounded by the kernel's socket buffers, the relay's
// buffer and the stream window; then the write timeout closes it.
func TestRelayFloodIsBounded(t *testing.T) {
	checkLeaks(t)
	cfg := DefaultMeshConfig()
	release := make(chan struct{})
	ms, _ := newMeshes(t, 2, cfg, func(_ int, s *Stream) {
		defer s.Close()
		<-release // never reads
	})
	defer close(release)
	client, res := relayed(t, ms, time.Second)

	// Kernel buffering between the client and the relay: the send buffer
	// of the client's socket and the receive buffer of the relay's.
	sndbuf := sockBuf(t, client, unix.SO_SNDBUF)
	const mb = 1 << 20
	window := max(smuxInitialWindow, cfg.MaxStreamBuffer)
	bound := int64(2*sndbuf + RelayBufferSize + window + cfg.MaxFrameSize)

	chunk := make([]byte, 16<<10)
	var written int64
	stalls := 0
	for stalls < 3 && written <= bound+mb {
		_ = client.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := client.Write(chunk)
		written += int64(n)
		switch {
		case err == nil:
			stalls = 0
		case errors.Is(err, unix.EAGAIN) || isTimeout(err):
			if n == 0 {
				stalls++
			}
		default: // the relay gave up and closed: also the end of the flood
			stalls = 3
		}
	}
	t.Logf("client wrote %d bytes before blocking; bound %d", written, bound)
	if written > bound {
		t.Fatalf("flood: %d bytes taken in, more than the bound %d", written, bound)
	}
	if written < int64(smuxInitialWindow) {
		t.Fatalf("flood: only %d bytes taken in: the relay is not moving data", written)
	}
	// The relay's write on the stream times out and closes both sides.
	r := recv(t, "relay to give up", res)
	if !isTimeout(r.Err) {
		t.Errorf("relay ended with %v, want a write timeout", r.Err)
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

func sockBuf(t *testing.T, c net.Conn, opt int) int {
	t.Helper()
	rc, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt) }); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}
