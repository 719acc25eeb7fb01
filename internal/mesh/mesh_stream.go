package mesh

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/xtaci/smux"
)

// writeChunk is the most a Stream writes under one WriteTimeout deadline:
// the timeout bounds the wait for progress, not the time to move a large
// buffer.
const writeChunk = 64 << 10

// Stream is one stream of a Mesh session: a net.Conn between this worker
// and a peer, with half-close (CloseWrite). Its writes are bounded by
// MeshConfig.WriteTimeout (see there); reads return io.EOF once the peer
// has closed its write side, and an error wrapping ErrPeerDown when the
// link to the peer is gone.
type Stream struct {
	st           *smux.Stream
	link         *link
	peer         int
	writeTimeout time.Duration
	deadlineMu   sync.Mutex // orders SetWriteDeadline against a Write's chunk deadlines
	userWrite    time.Time  // deadline set with SetWriteDeadline
	local        Addr
	remote       Addr
}

var _ net.Conn = (*Stream)(nil)

func newStream(st *smux.Stream, l *link, self, peer int, wt time.Duration) *Stream {
	return &Stream{
		st:           st,
		link:         l,
		peer:         peer,
		writeTimeout: wt,
		local:        Addr{Shard: self, Stream: st.ID()},
		remote:       Addr{Shard: peer, Stream: st.ID()},
	}
}

// Peer is the shard index at the other end.
func (s *Stream) Peer() int { return s.peer }

// ID is the smux stream ID (odd when opened by the session's client end).
func (s *Stream) ID() uint32 { return s.st.ID() }

// Read reads from the stream. Once the peer has closed its write side and
// everything is read, it returns io.EOF; if the link died instead, an
// error wrapping ErrPeerDown.
func (s *Stream) Read(p []byte) (int, error) {
	n, err := s.st.Read(p)
	if err != nil {
		err = s.mapErr("read", err)
	}
	return n, err
}

// Write writes p, waiting for the peer's window as needed; each chunk of
// up to 64 KiB must go out within MeshConfig.WriteTimeout (or before the
// deadline set with SetWriteDeadline, if earlier).
func (s *Stream) Write(p []byte) (int, error) {
	if s.writeTimeout <= 0 {
		n, err := s.st.Write(p)
		if err != nil {
			err = s.mapErr("write", err)
		}
		return n, err
	}
	sent := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > writeChunk {
			chunk = chunk[:writeChunk]
		}
		s.deadlineMu.Lock()
		d := time.Now().Add(s.writeTimeout)
		if u := s.userWrite; !u.IsZero() && u.Before(d) {
			d = u
		}
		_ = s.st.SetWriteDeadline(d)
		s.deadlineMu.Unlock()
		n, err := s.st.Write(chunk)
		sent += n
		if err != nil {
			return sent, s.mapErr("write", err)
		}
		p = p[n:]
	}
	return sent, nil
}

// mapErr keeps io.EOF and timeouts recognisable, and turns the failures
// of a dead link into ErrPeerDown.
func (s *Stream) mapErr(op string, err error) error {
	if s.link.dead.Load() {
		return fmt.Errorf("mesh: stream %s, peer %d: %w (%v)", op, s.peer, ErrPeerDown, err)
	}
	if err == io.EOF {
		return io.EOF
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &timeoutError{op: op, peer: s.peer}
	}
	return fmt.Errorf("mesh: stream %s, peer %d: %w", op, s.peer, err)
}

// CloseWrite sends FIN: the peer reads io.EOF after what was written.
func (s *Stream) CloseWrite() error { return s.st.CloseWrite() }

// Close closes both directions; unread data is discarded.
func (s *Stream) Close() error { return s.st.Close() }

// LocalAddr is this shard and the stream ID.
func (s *Stream) LocalAddr() net.Addr { return s.local }

// RemoteAddr is the peer shard and the stream ID.
func (s *Stream) RemoteAddr() net.Addr { return s.remote }

// SetDeadline sets both deadlines.
func (s *Stream) SetDeadline(t time.Time) error {
	_ = s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline; the zero time clears it.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.st.SetReadDeadline(t) }

// SetWriteDeadline sets a write deadline on top of WriteTimeout (the
// earlier one applies); the zero time clears it.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.deadlineMu.Lock()
	defer s.deadlineMu.Unlock()
	s.userWrite = t
	if s.writeTimeout <= 0 || (!t.IsZero() && t.Before(time.Now().Add(s.writeTimeout))) {
		// Also cut short a Write in progress, as net.Conn does.
		return s.st.SetWriteDeadline(t)
	}
	return nil
}

// Addr is the address of one end of a mesh stream.
type Addr struct {
	Shard  int
	Stream uint32
}

// Network returns "mesh".
func (Addr) Network() string { return "mesh" }

// String returns "shard/<index>/stream/<id>".
func (a Addr) String() string { return fmt.Sprintf("shard/%d/stream/%d", a.Shard, a.Stream) }

// timeoutError is a stream deadline that expired.
type timeoutError struct {
	op   string
	peer int
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("mesh: stream %s, peer %d: i/o timeout", e.op, e.peer)
}
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// Is makes errors.Is(err, os.ErrDeadlineExceeded) true, like net.Conn.
func (e *timeoutError) Is(target error) bool { return target == os.ErrDeadlineExceeded }
