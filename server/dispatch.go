package server

import (
	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/shard"
)

// dispatch routes a connection whose key (or direct preamble) p is
// read, on the loop: the handler gets it here when this shard owns its
// key; otherwise it goes to the owner, the socket itself (hand-off) or
// its bytes over a mesh stream (relay). In a cluster, the owner is the
// worker of this node that stands for the key's own, and relays it to
// its node (cluster.go). A TLS connection routed before
// its handshake (pc.tls) has its TLS terminated by its owner. It is the
// one place that rule is written.
func (r *routed) dispatch(gc gnet.Conn, pc *pconn, p frame.Preamble) gnet.Action {
	owner, key, err := r.ownerOf(p)
	if err != nil {
		return r.refuseConn(gc, frame.Reason(err))
	}
	direct := key == nil
	if owner == r.info.Index {
		if pc.tls {
			return r.terminateTLS(gc, pc, key)
		}
		if r.remote(key) {
			return r.relayToNode(gc, pc, key)
		}
		c := r.newConn(key, direct, r.info.Index)
		c.gc, c.remote, c.local = gc, remoteOf(gc, pc), localOf(pc)
		pc.conn = c
		return r.openLocal(pc, c)
	}
	if r.links != nil && gc.InboundBuffered() <= frame.MaxHandoffEarly {
		pc.detached = true // gnet closes its descriptor; the owner has the socket
		r.lstats.forwarded[howHandoff]++
		return r.handOff(gc, pc, key, owner)
	}
	if pc.tls { // cannot happen: Config.Validate asks for hand-offs, and a ClientHello fits
		return r.refuseConn(gc, "internal error")
	}
	pc.detached = true
	r.lstats.forwarded[howRelay]++
	return r.relay(gc, pc, key, owner)
}

// ownerOf returns the shard that owns the connection of preamble p, and
// its key (a copy; nil for a direct preamble, whose token it verifies).
func (r *routed) ownerOf(p frame.Preamble) (owner int, key []byte, err error) {
	if p.Direct {
		if err := frame.VerifyDirect(r.info.Secret, r.info.Count, p.Shard, p.Token); err != nil {
			return 0, nil, err
		}
		return int(p.Shard), nil, nil
	}
	key = append([]byte(nil), p.Key...)
	return shard.Owner(key, r.info.Count), key, nil
}

// owns reports whether this shard owns a connection with key (nil:
// direct, naming directShard): what a receiving worker checks of what
// another worker sends it.
func (r *routed) owns(key []byte, directShard uint32) bool {
	if key == nil {
		return int(directShard) == r.info.Index
	}
	return shard.Owner(key, r.info.Count) == r.info.Index
}

// newConn makes the Conn of a connection this shard owns, accepted by
// shard via, and counts it open (see hold) until its OnClose.
func (r *routed) newConn(key []byte, direct bool, via int) *Conn {
	r.hold()
	r.conns++
	return &Conn{rt: r, key: key, direct: direct, via: via, idleTimeout: r.info.Config.IdleTimeout}
}

// openLocal opens a Conn backed by the gnet connection of pc, on the
// loop, and returns what gnet is to do with the connection.
func (r *routed) openLocal(pc *pconn, c *Conn) gnet.Action {
	r.open(c)
	if c.hijacked {
		pc.conn, pc.detached = nil, true
		return gnet.Close // the hijacker's duplicate keeps the socket
	}
	return gnet.None
}

// open gives a Conn to the handler, on the loop: OnOpen, then OnData for
// the bytes already buffered. Every kind of Conn opens here.
func (r *routed) open(c *Conn) {
	if c.idleTimeout > 0 {
		r.watchIdle(c)
	}
	r.countOpen(c)
	c.opening = true
	r.call(c, "OnOpen", Handler.OnOpen)
	c.opening = false
	if c.hijacked || c.closing {
		return
	}
	switch {
	case c.st != nil:
		c.st.dataReady()
	case c.tl != nil:
		r.tlsReceive(c, true)
	case c.gc != nil && c.Buffered() > 0:
		r.data(c)
	}
}
