package nodelink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/xtaci/smux"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/cluster"
)

// Config configures a node's links. Members, Workers, TLS, Listener and
// Accept are required.
type Config struct {
	// Members is the cluster and this node's place in it.
	Members cluster.Members
	// Workers is the number of workers every node runs.
	Workers int
	// Worker is the index of the worker these links belong to: they
	// join it with the same worker of every other node.
	Worker int
	// TLS is the mutual TLS configuration (TLSConfig). The name a dialled
	// node's certificate must match is the host of its address.
	TLS *tls.Config
	// Listener is the cluster listener, plain TCP: TLS is done here.
	Listener net.Listener
	// Accept is called, on a goroutine of its own, with each stream a
	// peer opens. It owns the stream.
	Accept func(peer int, s *Stream)
	// HandshakeTimeout bounds the TLS handshake and the hellos of a new
	// link. Default 10s.
	HandshakeTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between two dials of a
	// peer, doubled after each failure. Defaults 100ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// Smux configures the sessions. Default: smux's, protocol version 2.
	Smux *smux.Config
	// Log receives the links' events. Default: slog.Default().
	Log *slog.Logger
}

// Links are a node's links to the other nodes of its cluster.
type Links struct {
	cfg   Config
	hello frame.NodeHello

	mu       sync.Mutex
	sessions map[int]*smux.Session // peer -> its current session
	made     map[int]uint64        // peer -> links made with it
	changed  chan struct{}         // closed and replaced when sessions change
	// old are the sessions no longer used for new streams (replaced, or
	// their peer went away) that still serve the streams they carry,
	// until they end or Close.
	old map[*smux.Session]struct{}
	// away is signalled when the peer of a link this node dials goes
	// away (draining): the dialler makes a new link at once.
	away     map[int]chan struct{}
	closed   bool
	draining bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start starts the links: it accepts on cfg.Listener and dials the nodes
// above this one. Close stops them.
func Start(cfg Config) (*Links, error) {
	switch {
	case cfg.TLS == nil || cfg.Listener == nil || cfg.Accept == nil:
		return nil, errors.New("nodelink: Config needs TLS, Listener and Accept")
	case cfg.Workers < 1 || cfg.Worker < 0 || cfg.Worker >= cfg.Workers:
		return nil, fmt.Errorf("nodelink: worker %d of %d", cfg.Worker, cfg.Workers)
	case cfg.Members.Self < 0 || cfg.Members.Self >= cfg.Members.Size():
		return nil, fmt.Errorf("nodelink: node %d of %d", cfg.Members.Self, cfg.Members.Size())
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	if cfg.Smux == nil {
		cfg.Smux = smux.DefaultConfig()
		cfg.Smux.Version = 2
	}
	if err := smux.VerifyConfig(cfg.Smux); err != nil {
		return nil, fmt.Errorf("nodelink: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	l := &Links{
		cfg: cfg,
		hello: frame.NodeHello{
			Version: frame.NodeHelloVersion,
			Index:   uint32(cfg.Members.Self),
			Size:    uint32(cfg.Members.Size()),
			Workers: uint32(cfg.Workers),
			Worker:  uint32(cfg.Worker),
			List:    cfg.Members.ListHash(),
		},
		sessions: make(map[int]*smux.Session),
		made:     make(map[int]uint64),
		old:      make(map[*smux.Session]struct{}),
		away:     make(map[int]chan struct{}),
		changed:  make(chan struct{}),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	for _, p := range cfg.Members.Peers() {
		if p > cfg.Members.Self {
			l.away[p] = make(chan struct{}, 1)
			l.wg.Add(1)
			go l.dialLoop(p)
		}
	}
	return l, nil
}

// Close closes the listener and every link, and waits for the links'
// goroutines (not for streams handed to Accept).
func (l *Links) Close() error {
	l.mu.Lock()
	l.closed = true
	sessions := l.sessions
	l.sessions = map[int]*smux.Session{}
	old := l.old
	l.old = map[*smux.Session]struct{}{}
	draining := l.draining
	l.mu.Unlock()
	l.cancel()
	var err error
	if !draining { // Drain closed it
		err = l.cfg.Listener.Close()
	}
	for _, s := range sessions {
		_ = s.Close()
	}
	for s := range old {
		_ = s.Close()
	}
	l.wg.Wait()
	return err
}

// Up reports whether the link to peer is up.
func (l *Links) Up(peer int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessions[peer]
	return s != nil && !s.IsClosed()
}

// PeerStats is the link to one other node.
type PeerStats struct {
	// Node is the peer's index.
	Node int
	// Up reports whether the link is up.
	Up bool
	// Links counts the links made with the peer since Start (one more
	// each time it, or this node, comes back).
	Links uint64
	// Streams is the number of streams open on the link.
	Streams int
}

// Stats returns the links to the other nodes, in node order.
func (l *Links) Stats() []PeerStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []PeerStats
	for _, p := range l.cfg.Members.Peers() {
		ps := PeerStats{Node: p, Links: l.made[p]}
		if s := l.sessions[p]; s != nil && !s.IsClosed() {
			ps.Up, ps.Streams = true, s.NumStreams()
		}
		out = append(out, ps)
	}
	return out
}

// Open opens a stream to peer, waiting for its link until ctx is done.
func (l *Links) Open(ctx context.Context, peer int) (*smux.Stream, error) {
	if peer == l.cfg.Members.Self || peer < 0 || peer >= l.cfg.Members.Size() {
		return nil, fmt.Errorf("nodelink: no link to node %d", peer)
	}
	for {
		l.mu.Lock()
		s, changed, closed := l.sessions[peer], l.changed, l.closed
		l.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if s != nil && !s.IsClosed() {
			st, err := s.OpenStream()
			if err == nil {
				return st, nil
			}
			l.drop(peer, s)
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("nodelink: node %d unavailable: %w", peer, ctx.Err())
		}
	}
}

// set makes s the link to peer, closing the one it replaces.
func (l *Links) set(peer int, s *smux.Session) bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	old := l.sessions[peer]
	l.sessions[peer] = s
	l.made[peer]++
	close(l.changed)
	l.changed = make(chan struct{})
	if old != nil && old.NumStreams() > 0 {
		// The streams it carries go on (a worker of the peer that
		// drains while its successor linked, say); it serves no new one.
		l.old[old] = struct{}{}
		old = nil
	}
	l.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return true
}

// drop forgets s as the link to peer, if it still is.
func (l *Links) drop(peer int, s *smux.Session) {
	l.mu.Lock()
	delete(l.old, s)
	if l.sessions[peer] == s {
		delete(l.sessions, peer)
		close(l.changed)
		l.changed = make(chan struct{})
	}
	l.mu.Unlock()
	_ = s.Close()
}

// serve runs a link's session until it ends: every stream the peer opens
// goes to Accept.
func (l *Links) serve(peer int, s *smux.Session) {
	defer l.drop(peer, s)
	for {
		st, err := s.AcceptStream()
		if err != nil {
			if !errors.Is(err, io.ErrClosedPipe) && l.ctx.Err() == nil {
				l.cfg.Log.Info("node link down", "peer", peer, "err", err)
			}
			return
		}
		go l.stream(peer, s, st)
	}
}
