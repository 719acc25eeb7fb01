package server

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/subordinate/subordinate/internal/gnetx"
)

// adoptionQueue bounds the hand-offs a worker has received and queued for
// its loop but not yet adopted; past it, the receivers stop reading their
// links and the senders' sockets fill.
const adoptionQueue = 4096

// adoptions are the handed-off sockets queued for the loop (Engine.Run)
// and not yet adopted. Whoever takes one first owns its descriptor: the
// loop, which adopts it, or the shard when it stops, which closes it. A
// function queued on a loop that stops never runs, and its socket would
// otherwise stay open.
type adoptions struct {
	slots chan struct{} // one per queued socket: the bound

	mu      sync.Mutex
	closed  bool
	waiting map[*adoption]struct{}
}

// adoption is one socket queued for the loop.
type adoption struct {
	s gnetx.Socket
	a *arrival
}

func newAdoptions() *adoptions {
	return &adoptions{slots: make(chan struct{}, adoptionQueue), waiting: make(map[*adoption]struct{})}
}

// add queues p, waiting for room; it returns false, and leaves p to the
// caller, once the shard has stopped.
func (q *adoptions) add(p *adoption, stopped <-chan struct{}) bool {
	select {
	case q.slots <- struct{}{}:
	case <-stopped:
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		<-q.slots
		return false
	}
	q.waiting[p] = struct{}{}
	return true
}

// take removes p and reports whether it was still queued: the caller now
// owns its descriptor.
func (q *adoptions) take(p *adoption) bool {
	q.mu.Lock()
	_, ok := q.waiting[p]
	delete(q.waiting, p)
	q.mu.Unlock()
	if ok {
		<-q.slots
	}
	return ok
}

// close takes every socket still queued and refuses new ones.
func (q *adoptions) close() []*adoption {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	ps := make([]*adoption, 0, len(q.waiting))
	for p := range q.waiting {
		ps = append(ps, p)
		delete(q.waiting, p)
		<-q.slots
	}
	return ps
}

// adopt queues a handed-off socket for the loop, which adopts it into
// gnet as if it had accepted it: OnOpen runs with a as the connection's
// context (openArrival). The socket is held for the drain until then.
func (r *routed) adopt(s gnetx.Socket, a *arrival) {
	p := &adoption{s: s, a: a}
	if !r.adoptions.add(p, r.stopped) {
		abandon(p)
		return
	}
	r.hold()
	err := r.eng.Run(func() {
		if !r.adoptions.take(p) {
			return // the shard stopped first, and closed it
		}
		defer r.release()
		if err := r.eng.Adopt(s, a); err != nil {
			// gnet closed the socket: OnOpen did not run, and will not.
			r.log.Warn("cannot adopt a handed-off connection", "peer", a.via, "err", err)
			r.gstats.refused[refBusy].Add(1)
			ack(a.link, a.seq)
		}
	})
	if err != nil && r.adoptions.take(p) {
		abandon(p)
		r.release()
	}
}

// abandonAdoptions ends the connections still queued for the loop when
// the shard stops.
func (r *routed) abandonAdoptions() {
	for _, p := range r.adoptions.close() {
		abandon(p)
		r.release()
	}
}

// abandon ends the connection of a socket the loop will not adopt (the
// shard stopped first): the client sees its connection end.
func abandon(p *adoption) {
	ack(p.a.link, p.a.seq)
	_ = unix.Shutdown(p.s.FD, unix.SHUT_RDWR)
	_ = unix.Close(p.s.FD)
}
