package handoff

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Links are a worker's hand-off links, by peer index. A peer's link is
// set when the peer starts (Set) and dropped when the peer is gone
// (Down); Get never blocks, Wait waits for a peer that is restarting.
type Links struct {
	peers []peerLinks

	mu     sync.Mutex
	closed bool
}

type peerLinks struct {
	cur atomic.Pointer[Link]
	up  chan struct{} // closed while a link is set; guarded by Links.mu
}

// NewLinks returns Links for count peers (this worker's own index among
// them is never set).
func NewLinks(count int) *Links {
	ls := &Links{peers: make([]peerLinks, count)}
	for i := range ls.peers {
		ls.peers[i].up = make(chan struct{})
	}
	return ls
}

// Get returns the current link to peer, or nil while it is down.
func (ls *Links) Get(peer int) *Link {
	if peer < 0 || peer >= len(ls.peers) {
		return nil
	}
	return ls.peers[peer].cur.Load()
}

// Wait returns the link to peer as soon as there is one, or ctx's error.
func (ls *Links) Wait(ctx context.Context, peer int) (*Link, error) {
	if peer < 0 || peer >= len(ls.peers) {
		return nil, fmt.Errorf("handoff: peer %d out of range", peer)
	}
	p := &ls.peers[peer]
	for {
		if l := p.cur.Load(); l != nil {
			return l, nil
		}
		ls.mu.Lock()
		up, closed := p.up, ls.closed
		ls.mu.Unlock()
		if closed {
			return nil, fmt.Errorf("handoff: peer %d: %w", peer, ErrPeerGone)
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, fmt.Errorf("handoff: waiting for peer %d: %w", peer, ctx.Err())
		}
	}
}

// Set makes l the link to peer and wakes its waiters. A previous link is
// closed. Set after Close closes l.
func (ls *Links) Set(peer int, l *Link) {
	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		l.Close()
		return
	}
	p := &ls.peers[peer]
	old := p.cur.Swap(l)
	if old == nil {
		close(p.up)
	}
	ls.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

// Down drops l, the link to peer, if it is still the current one, and
// closes it. It reports whether it dropped it.
func (ls *Links) Down(peer int, l *Link) bool {
	ls.mu.Lock()
	p := &ls.peers[peer]
	ok := p.cur.CompareAndSwap(l, nil)
	if ok {
		p.up = make(chan struct{})
	}
	ls.mu.Unlock()
	l.Close()
	return ok
}

// Close closes every link; waiters return ErrPeerGone.
func (ls *Links) Close() {
	ls.mu.Lock()
	ls.closed = true
	var open []*Link
	for i := range ls.peers {
		p := &ls.peers[i]
		if l := p.cur.Swap(nil); l != nil {
			open = append(open, l)
		} else {
			close(p.up) // wake the waiters
		}
	}
	ls.mu.Unlock()
	for _, l := range open {
		l.Close()
	}
}
