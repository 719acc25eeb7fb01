package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xtaci/smux"

	"github.com/subordinate/subordinate/internal/batchconn"
)

// Errors of the Mesh.
var (
	// ErrPeerDown: no live session to the peer (Open gave up waiting), or
	// the link died under a stream.
	ErrPeerDown = errors.New("mesh: peer down")
	// ErrMeshClosed: the Mesh was closed.
	ErrMeshClosed = errors.New("mesh: mesh closed")
	// ErrBadPeer: a peer index out of range, or this worker's own index.
	ErrBadPeer = errors.New("mesh: bad peer index")
)

// StreamHandler receives a stream a peer opened. It runs in its own
// goroutine, one per stream, and owns the stream: it closes it. The
// stream carries a read deadline of MeshConfig.HeaderTimeout; the handler
// clears it once it has read the stream header.
type StreamHandler func(peer int, s *Stream)

// Mesh holds this worker's smux sessions to every other worker: one
// session per peer, over a link (one end of a socketpair) installed with
// SetLink. Either end opens streams with Open; streams the peer opens go
// to the StreamHandler. All methods are safe for concurrent use.
type Mesh struct {
	self, count int
	cfg         MeshConfig
	smuxCfg     *smux.Config
	log         *slog.Logger

	handler atomic.Pointer[StreamHandler]
	onDown  atomic.Pointer[func(peer int, err error)]
	// quiet: the worker is going away (Quiesce), peers leaving is
	// expected and logged at INFO.
	quiet atomic.Bool

	mu      sync.Mutex
	peers   []peerState
	closed  bool
	closing chan struct{} // closed by Close
	wg      sync.WaitGroup
}

type peerState struct {
	sess *session      // live session, or nil
	up   chan struct{} // closed when a session is installed
	gen  uint64        // number of links installed

	opened, accepted, downs atomic.Uint64
}

// session is one smux session and the link under it.
type session struct {
	peer int
	gen  uint64
	link *link
	smux *smux.Session

	closing atomic.Bool // the Mesh closed it
}

// close closes the session, its streams and its link.
func (s *session) close() {
	s.closing.Store(true)
	_ = s.smux.Close()
}

// NewMesh returns the mesh of worker self among count workers. cfg is
// validated; logger may be nil (slog.Default) and should name the shard
// (a worker's logger does). handler receives the
// streams peers open; it may be nil and set later with Handle (streams
// that arrive with no handler are closed).
func NewMesh(self, count int, cfg MeshConfig, handler StreamHandler, logger *slog.Logger) (*Mesh, error) {
	if count < 1 || self < 0 || self >= count {
		return nil, fmt.Errorf("%w: self %d of %d", ErrBadPeer, self, count)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	m := &Mesh{
		self:    self,
		count:   count,
		cfg:     cfg,
		smuxCfg: cfg.smuxConfig(),
		log:     logger,
		peers:   make([]peerState, count),
		closing: make(chan struct{}),
	}
	for i := range m.peers {
		m.peers[i].up = make(chan struct{})
	}
	if handler != nil {
		m.handler.Store(&handler)
	}
	return m, nil
}

// Handle sets the StreamHandler for streams accepted from now on.
func (m *Mesh) Handle(h StreamHandler) {
	if h == nil {
		m.handler.Store(nil)
		return
	}
	m.handler.Store(&h)
}

// OnDown sets a function called (in the goroutine that noticed) each time
// the session to a peer dies other than by SetLink replacing it or Close:
// the worker may ask the master for a new link. It must not block. With
// an OnDown function the Mesh logs a peer down at INFO and leaves the
// warning, if any, to the function, which knows whether its worker is
// going away; without one it logs WARN, INFO once quiesced.
func (m *Mesh) OnDown(fn func(peer int, err error)) {
	if fn == nil {
		m.onDown.Store(nil)
		return
	}
	m.onDown.Store(&fn)
}

// Quiesce tells the Mesh its worker is draining or stopping: the peers
// are expected to go away too, so a peer going down is logged at INFO,
// not WARN, from now on. The Mesh keeps working.
func (m *Mesh) Quiesce() { m.quiet.Store(true) }

// Quiet reports whether Quiesce was called.
func (m *Mesh) Quiet() bool { return m.quiet.Load() }

// Self is this worker's shard index; Count the number of shards.
func (m *Mesh) Self() int  { return m.self }
func (m *Mesh) Count() int { return m.count }

func (m *Mesh) checkPeer(peer int) error {
	if peer < 0 || peer >= m.count || peer == m.self {
		return fmt.Errorf("%w: %d (self %d of %d)", ErrBadPeer, peer, m.self, m.count)
	}
	return nil
}

// SetLink installs conn as the link to peer and starts a session on it.
// The end with the lower shard index is the smux client, the other the
// server; both open streams. A link already installed for peer (a peer
// that restarted) is closed with its session, and its streams fail. The
// Mesh owns conn from now on, also when SetLink fails.
func (m *Mesh) SetLink(peer int, conn net.Conn) error {
	if err := m.checkPeer(peer); err != nil {
		_ = conn.Close()
		return err
	}
	// The send loop's frames go out in batches (batchconn): under load,
	// the frames of many streams in one write.
	l := newLink(batchconn.New(conn), m.cfg.ReadBufferSize)
	var sm *smux.Session
	var err error
	if m.self < peer {
		sm, err = smux.Client(l, m.smuxCfg)
	} else {
		sm, err = smux.Server(l, m.smuxCfg)
	}
	if err != nil { // the config was validated; smux disagrees
		_ = l.Close()
		return fmt.Errorf("mesh: session to peer %d: %w", peer, err)
	}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = sm.Close()
		return ErrMeshClosed
	}
	ps := &m.peers[peer]
	old := ps.sess
	ps.gen++
	s := &session{peer: peer, gen: ps.gen, link: l, smux: sm}
	ps.sess = s
	if old == nil {
		close(ps.up)
	}
	m.wg.Add(1)
	m.mu.Unlock()

	go m.acceptLoop(s)
	if old != nil {
		old.close()
		m.log.Info("mesh: link replaced", "peer", peer, "gen", s.gen)
	} else {
		m.log.Info("mesh: link up", "peer", peer, "gen", s.gen)
	}
	return nil
}

// acceptLoop hands the streams the peer opens to the handler until the
// session dies, then takes the session down.
func (m *Mesh) acceptLoop(s *session) {
	defer m.wg.Done()
	var err error
	for {
		var st *smux.Stream
		st, err = s.smux.AcceptStream()
		if err != nil {
			break
		}
		m.peers[s.peer].accepted.Add(1)
		h := m.handler.Load()
		if h == nil {
			_ = st.Close()
			m.log.Warn("mesh: stream from peer closed, no handler", "peer", s.peer)
			continue
		}
		if m.cfg.HeaderTimeout > 0 {
			_ = st.SetReadDeadline(time.Now().Add(m.cfg.HeaderTimeout))
		}
		go (*h)(s.peer, newStream(st, s.link, m.self, s.peer, m.cfg.WriteTimeout))
	}
	if we := s.link.writeErr.Load(); we != nil {
		err = fmt.Errorf("link write: %w", *we)
	} else if !s.closing.Load() && (errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed)) {
		// The Mesh did not close it, the peer did not hang up: smux's
		// keepalive closed the session.
		err = fmt.Errorf("no frame from peer within %v (keepalive): %w", m.cfg.KeepAliveTimeout, err)
	}
	s.close()
	m.down(s, err)
}

// down takes s out of service if it is still the peer's live session, and
// logs once per session.
func (m *Mesh) down(s *session, err error) {
	m.mu.Lock()
	ps := &m.peers[s.peer]
	if ps.sess != s {
		m.mu.Unlock()
		return // replaced by SetLink, or closed by Close
	}
	ps.sess = nil
	ps.up = make(chan struct{})
	ps.downs.Add(1)
	m.mu.Unlock()
	lv := slog.LevelWarn
	if m.quiet.Load() || m.onDown.Load() != nil {
		lv = slog.LevelInfo // expected, or the OnDown function says
	}
	m.log.Log(context.Background(), lv, "mesh: peer down", "peer", s.peer, "gen", s.gen, "err", err)
	if fn := m.onDown.Load(); fn != nil {
		(*fn)(s.peer, err)
	}
}

// Open opens a stream to peer. With no live session to peer it waits for
// SetLink until ctx is done (this is the owner-wait), then fails with an
// error wrapping ErrPeerDown and ctx.Err().
func (m *Mesh) Open(ctx context.Context, peer int) (*Stream, error) {
	if err := m.checkPeer(peer); err != nil {
		return nil, err
	}
	ps := &m.peers[peer]
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrMeshClosed
		}
		s, up := ps.sess, ps.up
		m.mu.Unlock()

		if s != nil {
			st, err := s.smux.OpenStream()
			if err == nil {
				ps.opened.Add(1)
				return newStream(st, s.link, m.self, peer, m.cfg.WriteTimeout), nil
			}
			// The session is dying (its link failed) or out of stream
			// IDs: take it down and wait for the next link.
			s.close()
			m.down(s, err)
			continue
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, fmt.Errorf("mesh: open stream to peer %d: %w: %w", peer, ErrPeerDown, ctx.Err())
		case <-m.closing:
			return nil, ErrMeshClosed
		}
	}
}

// Up reports whether there is a live session to peer.
func (m *Mesh) Up(peer int) bool {
	if m.checkPeer(peer) != nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peers[peer].sess != nil
}

// PeerStats describes the session to one peer.
type PeerStats struct {
	Peer     int    // shard index
	Up       bool   // a live session exists
	Links    uint64 // links installed by SetLink so far
	Downs    uint64 // sessions that died (not counting replacements)
	Streams  int    // streams open on the live session
	Opened   uint64 // streams opened by this end, all sessions
	Accepted uint64 // streams accepted from the peer, all sessions
}

// Stats returns one PeerStats per peer, in shard order (self left out).
func (m *Mesh) Stats() []PeerStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]PeerStats, 0, m.count-1)
	for i := range m.peers {
		if i == m.self {
			continue
		}
		ps := &m.peers[i]
		st := PeerStats{
			Peer: i, Up: ps.sess != nil, Links: ps.gen, Downs: ps.downs.Load(),
			Opened: ps.opened.Load(), Accepted: ps.accepted.Load(),
		}
		if ps.sess != nil {
			st.Streams = ps.sess.smux.NumStreams()
		}
		out = append(out, st)
	}
	return out
}

// Close closes every session and link; their streams fail, Open returns
// ErrMeshClosed. It waits for the Mesh's own goroutines (not for the
// StreamHandlers, whose streams fail) and is idempotent.
func (m *Mesh) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return nil
	}
	m.closed = true
	close(m.closing)
	var live []*session
	for i := range m.peers {
		if s := m.peers[i].sess; s != nil {
			live = append(live, s)
			m.peers[i].sess = nil
		}
	}
	m.mu.Unlock()
	for _, s := range live {
		s.close()
	}
	m.wg.Wait()
	return nil
}
