package nodelink

import (
	"io"
	"time"

	"github.com/xtaci/smux"
)

// goAway is the only byte of a stream that says its sender drains: it
// takes no new stream on that link. A stream that carries a connection
// starts with a stream header instead, whose first byte (its version)
// is never 0xFF.
const goAway = 0xFF

// Stream is a stream a peer opened: a connection relayed to this node.
// It reads the byte Links read to tell it from a go-away first.
type Stream struct {
	*smux.Stream
	first []byte
}

// Read reads the stream, from its first byte.
func (s *Stream) Read(p []byte) (int, error) {
	if len(s.first) > 0 {
		n := copy(p, s.first)
		s.first = s.first[n:]
		return n, nil
	}
	return s.Stream.Read(p)
}

// stream reads the first byte of a stream peer opened on s: a go-away,
// or the start of what goes to Accept. A draining node takes no new
// stream: it closes it unread, and the peer tries again on its next link.
func (l *Links) stream(peer int, s *smux.Session, st *smux.Stream) {
	_ = st.SetReadDeadline(time.Now().Add(l.cfg.HandshakeTimeout))
	var b [1]byte
	if _, err := io.ReadFull(st, b[:]); err != nil {
		_ = st.Close()
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	if b[0] == goAway {
		_ = st.Close()
		l.goneAway(peer, s)
		return
	}
	if l.isDraining() {
		_ = st.Close()
		return
	}
	l.cfg.Accept(peer, &Stream{Stream: st, first: b[:]})
}

// goneAway takes s, whose peer drains, out of use for new streams; it
// serves its streams until it ends. If this node dials peer, it links
// again at once: the peer's successor (a new worker after an upgrade)
// takes the link.
func (l *Links) goneAway(peer int, s *smux.Session) {
	l.mu.Lock()
	current := l.sessions[peer] == s
	if current {
		delete(l.sessions, peer)
		l.old[s] = struct{}{}
		close(l.changed)
		l.changed = make(chan struct{})
	}
	ch := l.away[peer]
	l.mu.Unlock()
	if !current {
		return // replaced already
	}
	l.cfg.Log.Info("node link going away: the peer's worker drains", "peer", peer)
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Drain stops taking new links and new streams, and tells every linked
// peer so (a go-away), so that their new streams wait for this worker's
// successor: after a binary upgrade, the new worker of the same index,
// which accepts on the same cluster listener (this one closes its copy)
// or dials the peers itself. This worker still opens streams on its links
// (for connections it took before), and the streams open go on until
// Close.
func (l *Links) Drain() {
	l.mu.Lock()
	if l.draining || l.closed {
		l.mu.Unlock()
		return
	}
	l.draining = true
	var sessions []*smux.Session
	for _, s := range l.sessions {
		sessions = append(sessions, s)
	}
	l.mu.Unlock()
	_ = l.cfg.Listener.Close()
	for _, s := range sessions {
		st, err := s.OpenStream()
		if err != nil {
			continue
		}
		_ = st.SetWriteDeadline(time.Now().Add(l.cfg.HandshakeTimeout))
		_, _ = st.Write([]byte{goAway})
		_ = st.Close()
	}
}

// isDraining reports whether Drain was called.
func (l *Links) isDraining() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.draining
}
