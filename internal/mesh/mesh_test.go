package mesh

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// roundTrip opens a stream from m to peer, sends msg, half-closes and
// returns what came back.
func roundTrip(ctx context.Context, m *Mesh, peer int, msg []byte) ([]byte, error) {
	s, err := m.Open(ctx, peer)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := s.Write(msg)
		if err == nil {
			err = s.CloseWrite()
		}
		errc <- err
	}()
	got, rerr := io.ReadAll(s)
	if werr := <-errc; werr != nil {
		return got, werr
	}
	return got, rerr
}

func TestMeshStreamsBothDirections(t *testing.T) {
	checkLeaks(t)
	ms, _ := newMeshes(t, 3, DefaultMeshConfig(), echoHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, m := range ms {
		for j := range ms {
			if i == j {
				continue
			}
			msg := []byte(fmt.Sprintf("from %d to %d", i, j))
			got, err := roundTrip(ctx, m, j, msg)
			if err != nil {
				t.Fatalf("%d->%d: %v", i, j, err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("%d->%d: got %q want %q", i, j, got, msg)
			}
		}
	}
	// The lower index is the smux client: its streams have odd IDs.
	s, err := ms[0].Open(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID()%2 != 1 || s.Peer() != 2 || s.RemoteAddr().String() != fmt.Sprintf("shard/2/stream/%d", s.ID()) {
		t.Errorf("stream from 0 to 2: id %d peer %d remote %v", s.ID(), s.Peer(), s.RemoteAddr())
	}
	s.Close()
	s, err = ms[2].Open(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID()%2 != 0 {
		t.Errorf("stream from 2 to 0 has odd id %d", s.ID())
	}
	s.Close()
	for _, st := range ms[1].Stats() {
		if !st.Up || st.Links != 1 || st.Opened != 1 || st.Accepted != 1 {
			t.Errorf("stats of 1: %+v", st)
		}
	}
}

func TestMeshManyConcurrentStreams(t *testing.T) {
	checkLeaks(t)
	ms, _ := newMeshes(t, 2, DefaultMeshConfig(), echoHandler)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const streams = 200
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for k := 0; k < streams; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := k % 2
			msg := make([]byte, 16<<10+k)
			_, _ = rand.Read(msg)
			got, err := roundTrip(ctx, ms[from], 1-from, msg)
			if err == nil && !bytes.Equal(got, msg) {
				err = fmt.Errorf("stream %d: echo differs (%d bytes back of %d)", k, len(got), len(msg))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// holdHandler reports each stream it accepts on started, reads it until
// it fails, and reports the error on got.
func holdHandler(started chan<- struct{}, got chan<- error) StreamHandler {
	return func(_ int, s *Stream) {
		defer s.Close()
		_ = s.SetReadDeadline(time.Time{})
		started <- struct{}{}
		_, err := io.Copy(io.Discard, s)
		got <- err
	}
}

// recv receives from ch, or fails the test after a generous deadline.
func recv[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("gave up waiting for %s", what)
		panic("unreachable")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMeshPeerDiesThenNewLink(t *testing.T) {
	checkLeaks(t)
	held, started := make(chan error, 4), make(chan struct{}, 4)
	ms, links := newMeshes(t, 2, DefaultMeshConfig(), holdHandler(started, held))
	a, b := ms[0], ms[1]
	// OnDown runs after Up(1) turns false, on the goroutine that saw the
	// link end: the test waits for the call, not for the state.
	var downs atomic.Int32
	downCalled := make(chan error, 4)
	a.OnDown(func(peer int, err error) {
		if peer == 1 {
			downs.Add(1)
			downCalled <- err
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	old, err := a.Open(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := old.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	recv(t, "stream accepted", started)

	// Worker 1 dies: its end of the link closes.
	links[1][0].Close()
	waitFor(t, "peer 1 down", func() bool { return !a.Up(1) })
	if _, err := old.Read(make([]byte, 1)); !errors.Is(err, ErrPeerDown) {
		t.Errorf("read on a stream whose peer died: %v, want ErrPeerDown", err)
	}
	if err := recv(t, "held stream to end", held); err == nil {
		t.Errorf("the stream held by the dead side ended without error")
	}
	if err := recv(t, "OnDown for peer 1", downCalled); err == nil {
		t.Errorf("OnDown for peer 1 with a nil error")
	}

	// While down, Open waits until its context ends.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = a.Open(short, 1)
	cancelShort()
	if !errors.Is(err, ErrPeerDown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open to a down peer: %v, want ErrPeerDown and DeadlineExceeded", err)
	}

	// An Open that waits is served by the next link.
	opened := make(chan error, 1)
	go func() {
		s, err := a.Open(ctx, 1)
		if err == nil {
			_, err = s.Write([]byte("after restart"))
			s.Close()
		}
		opened <- err
	}()
	x, y := socketPair(t)
	if err := b.SetLink(0, y); err != nil { // "restarted" worker 1
		t.Fatal(err)
	}
	if err := a.SetLink(1, x); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, "Open across the new link", opened); err != nil {
		t.Fatalf("Open across the new link: %v", err)
	}
	recv(t, "new stream accepted", started)
	if err := recv(t, "new stream to end", held); err != nil {
		t.Errorf("stream on the new link: %v", err)
	}
	st := a.Stats()[0]
	if !st.Up || st.Links != 2 || st.Downs != 1 {
		t.Errorf("stats after restart: %+v", st)
	}
	// One link went down, once: OnDown was called once in all.
	if n := downs.Load(); n != 1 {
		t.Errorf("OnDown called %d times, want 1", n)
	}
}

func TestMeshSetLinkReplacesLiveSession(t *testing.T) {
	checkLeaks(t)
	held, started := make(chan error, 4), make(chan struct{}, 4)
	ms, _ := newMeshes(t, 2, DefaultMeshConfig(), holdHandler(started, held))
	a, b := ms[0], ms[1]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	old, err := a.Open(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := old.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	recv(t, "stream accepted", started)
	x, y := socketPair(t)
	if err := a.SetLink(1, x); err != nil {
		t.Fatal(err)
	}
	if err := b.SetLink(0, y); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Read(make([]byte, 1)); err == nil || err == io.EOF {
		t.Errorf("read on a replaced session's stream: %v, want an error", err)
	}
	if err := recv(t, "held stream to end", held); err == nil {
		t.Errorf("peer's stream of the replaced session ended without error")
	}
	got, err := roundTrip(ctx, a, 1, []byte("new"))
	if err != nil || len(got) != 0 {
		t.Fatalf("stream on the new session: %q %v", got, err)
	}
	recv(t, "new stream accepted", started)
	if err := recv(t, "new stream to end", held); err != nil {
		t.Errorf("stream on the new session: %v", err)
	}
}

func TestMeshSlowStreamDoesNotStallOthers(t *testing.T) {
	checkLeaks(t)
	cfg := DefaultMeshConfig()
	cfg.WriteTimeout = 0 // the stalled writer waits; the test closes it
	release := make(chan struct{})
	received := make(chan int64, 1)
	h := func(_ int, s *Stream) {
		defer s.Close()
		var tag [1]byte
		if _, err := io.ReadFull(s, tag[:]); err != nil {
			return
		}
		if tag[0] == 'S' { // slow: never read again
			<-release
			return
		}
		n, _ := io.Copy(io.Discard, s)
		received <- n
	}
	ms, _ := newMeshes(t, 2, cfg, h)
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	slow, err := ms[0].Open(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var slowWritten atomic.Int64
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		if _, err := slow.Write([]byte{'S'}); err != nil {
			return
		}
		chunk := make([]byte, 16<<10)
		for {
			n, err := slow.Write(chunk)
			slowWritten.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	// The slow stream fills its window, then its writer blocks.
	waitFor(t, "slow stream's window to fill", func() bool {
		return slowWritten.Load() >= int64(cfg.MaxStreamBuffer)-16<<10
	})

	fast, err := ms[0].Open(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	const total = 16 << 20
	if _, err := fast.Write([]byte{'F'}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for sent := 0; sent < total; sent += len(buf) {
		if _, err := fast.Write(buf); err != nil {
			t.Fatalf("fast stream after %d bytes: %v", sent, err)
		}
	}
	if err := fast.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n := recv(t, "fast stream", received); n != total {
		t.Fatalf("fast stream delivered %d bytes, want %d", n, total)
	}
	fast.Close()
	if w := slowWritten.Load(); w > int64(cfg.MaxStreamBuffer) {
		t.Errorf("slow stream took %d bytes past a %d byte window", w, cfg.MaxStreamBuffer)
	}
	slow.Close()
	<-slowDone
}

func TestMeshStreamWriteTimeout(t *testing.T) {
	checkLeaks(t)
	cfg := DefaultMeshConfig()
	cfg.WriteTimeout = 50 * time.Millisecond
	// The peer closes each stream without reading: a v2 writer would wait
	// forever for a window update.
	ms, _ := newMeshes(t, 2, cfg, func(_ int, s *Stream) { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := ms[0].Open(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf := make([]byte, 64<<10)
	for i := 0; ; i++ {
		_, err := s.Write(buf)
		if err == nil {
			if i > 100 {
				t.Fatalf("wrote %d bytes to a stream the peer closed", i*len(buf))
			}
			continue
		}
		var ne interface{ Timeout() bool }
		if !errors.As(err, &ne) || !ne.Timeout() {
			// The FIN may also arrive first and fail the write: fine, but
			// it must fail.
			t.Logf("write ended with %v", err)
		}
		break
	}
}

func TestMeshCloseAndBadPeers(t *testing.T) {
	checkLeaks(t)
	ms, _ := newMeshes(t, 2, DefaultMeshConfig(), echoHandler)
	a := ms[0]
	ctx := context.Background()
	if _, err := a.Open(ctx, 0); !errors.Is(err, ErrBadPeer) {
		t.Errorf("Open to self: %v", err)
	}
	if _, err := a.Open(ctx, 2); !errors.Is(err, ErrBadPeer) {
		t.Errorf("Open out of range: %v", err)
	}
	x, y := socketPair(t)
	y.Close()
	if err := a.SetLink(5, x); !errors.Is(err, ErrBadPeer) {
		t.Errorf("SetLink out of range: %v", err)
	}
	// A peer that closes its mesh is noticed as down.
	ms[1].Close()
	waitFor(t, "peer 1 down", func() bool { return !a.Up(1) })

	// Open waiting on a down peer returns when the mesh closes.
	done := make(chan error, 1)
	go func() { _, err := a.Open(ctx, 1); done <- err }()
	a.Close()
	if err := recv(t, "Open during Close", done); !errors.Is(err, ErrMeshClosed) {
		t.Errorf("Open during Close: %v", err)
	}
	if _, err := a.Open(ctx, 1); !errors.Is(err, ErrMeshClosed) {
		t.Errorf("Open after Close: %v", err)
	}
	x, y = socketPair(t)
	y.Close()
	if err := a.SetLink(1, x); !errors.Is(err, ErrMeshClosed) {
		t.Errorf("SetLink after Close: %v", err)
	}
	if _, err := NewMesh(2, 2, DefaultMeshConfig(), nil, nil); !errors.Is(err, ErrBadPeer) {
		t.Errorf("NewMesh(self out of range): %v", err)
	}
}

func TestMeshConfigValidate(t *testing.T) {
	if err := DefaultMeshConfig().Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	for name, mod := range map[string]func(*MeshConfig){
		"frame 0":        func(c *MeshConfig) { c.MaxFrameSize = 0 },
		"frame 64K":      func(c *MeshConfig) { c.MaxFrameSize = 65536 },
		"window < frame": func(c *MeshConfig) { c.MaxStreamBuffer = 1024 },
		"session < win":  func(c *MeshConfig) { c.MaxReceiveBuffer = c.MaxStreamBuffer - 1 },
		"session > 1G":   func(c *MeshConfig) { c.MaxReceiveBuffer = 2 << 30 },
		"keepalive 0":    func(c *MeshConfig) { c.KeepAliveInterval = 0 },
		"ka timeout":     func(c *MeshConfig) { c.KeepAliveTimeout = c.KeepAliveInterval / 2 },
		"write timeout":  func(c *MeshConfig) { c.WriteTimeout = -1 },
		"header timeout": func(c *MeshConfig) { c.HeaderTimeout = -1 },
		"read buffer":    func(c *MeshConfig) { c.ReadBufferSize = -1 },
	} {
		c := DefaultMeshConfig()
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrBadMeshConfig) {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := NewMesh(0, 2, c, nil, nil); !errors.Is(err, ErrBadMeshConfig) {
			t.Errorf("NewMesh with %s: %v", name, err)
		}
	}
	c := DefaultMeshConfig()
	c.KeepAliveDisabled, c.KeepAliveInterval = true, 0
	if err := c.Validate(); err != nil {
		t.Errorf("keepalive disabled: %v", err)
	}
}

func TestMeshHeaderTimeout(t *testing.T) {
	checkLeaks(t)
	cfg := DefaultMeshConfig()
	cfg.HeaderTimeout = 20 * time.Millisecond
	got := make(chan error, 1)
	ms, _ := newMeshes(t, 2, cfg, func(_ int, s *Stream) {
		defer s.Close()
		_, err := s.Read(make([]byte, 1))
		got <- err
	})
	s, err := ms[0].Open(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Nothing is sent: the accepted stream's read must time out.
	err = recv(t, "header read", got)
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read of a silent stream: %v, want a timeout", err)
	}
}

func TestMeshKeepaliveNoticesWedgedPeer(t *testing.T) {
	checkLeaks(t)
	cfg := DefaultMeshConfig()
	cfg.KeepAliveInterval, cfg.KeepAliveTimeout = 10*time.Millisecond, 50*time.Millisecond
	m, err := NewMesh(0, 2, cfg, echoHandler, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	down := make(chan error, 1)
	m.OnDown(func(_ int, err error) { down <- err })
	x, y := socketPair(t)
	defer y.Close() // a peer that is alive but sends nothing
	if err := m.SetLink(1, x); err != nil {
		t.Fatal(err)
	}
	recv(t, "keepalive to take the peer down", down)
	if m.Up(1) {
		t.Fatal("peer still up after keepalive timeout")
	}
}

func TestStreamSetWriteDeadlineInterruptsWrite(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	ms, _ := newMeshes(t, 2, DefaultMeshConfig(), func(_ int, s *Stream) {
		defer s.Close()
		<-release // never reads
	})
	defer close(release)
	s, err := ms[0].Open(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(make([]byte, 4<<20)) // more than the window
		werr <- err
	}()
	_ = s.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
	if err := recv(t, "blocked write to end", werr); !isTimeout(err) {
		t.Fatalf("write past the deadline: %v, want a timeout", err)
	}
}
