package server

import (
	"net"

	"github.com/panjf2000/gnet/v2"
)

// acceptTLSFed starts a connection of a tls:// listener, in OnOpen: its
// handshake and its key are read on a goroutine (serveTLS) through a
// tlsFed, while gnet keeps the socket and feeds the goroutine what it
// reads (fedTraffic). The connection then comes back to the loop as a
// local Conn (fedToLoop) or, when another shard owns its key, leaves
// gnet for the relay (fedDetach).
func (r *routed) acceptTLSFed(gc gnet.Conn) ([]byte, gnet.Action) {
	pc := r.pool.Get().(*pconn)
	pc.gen++
	pc.tls = true
	pc.fed = newTLSFed(gc)
	gc.SetContext(pc)
	r.hold()       // the gnet connection, until OnClose
	r.socks.Add(1) // until OnClose
	r.hold()       // the handshake's goroutine, until it ends
	go r.serveTLS(tlsStart{fed: fedRef{f: pc.fed, gc: gc, pc: pc, gen: pc.gen}})
	return nil, gnet.None
}

// feedTLS starts the handshake of pc, a connection of a tls:// listener
// whose first bytes (a PROXY header, a ClientHello read for its server
// name) were read on the loop, or a socket handed off to this worker
// with the ClientHello another worker read (s.prefix), as acceptTLSFed
// does: s.prefix, then what gnet holds unread, start the TLS stream. pc's preamble timer is stopped
// already; the handshake has its own deadline.
func (r *routed) feedTLS(gc gnet.Conn, pc *pconn, s tlsStart) gnet.Action {
	f := newTLSFed(gc)
	if len(s.prefix) > 0 { // read by the worker that handed the socket off
		f.push(s.prefix)
		s.prefix = nil
	}
	if gc.InboundBuffered() > 0 {
		b, _ := gc.Next(-1)
		f.push(b)
	}
	pc.fed = f
	s.fed = fedRef{f: f, gc: gc, pc: pc, gen: pc.gen}
	r.hold() // the handshake's goroutine, until it ends
	go r.serveTLS(s)
	return gnet.None
}

// fedRef names a fed connection for the loop to find it again, from the
// handshake's goroutine: it is still the same while gc's context is pc
// with the same generation and the same tlsFed.
type fedRef struct {
	f   *tlsFed
	gc  gnet.Conn
	pc  *pconn
	gen uint64
}

// live reports whether the connection is still the one ref names and
// still fed, on the loop.
func (ref fedRef) live() bool {
	return ref.gc.Context() == ref.pc && ref.pc.gen == ref.gen && ref.pc.fed == ref.f
}

// fedTraffic gives what gnet read to a handshake's goroutine, in
// OnTraffic. A client that sends more than a Conn may buffer before its
// handshake and key are done is refused as a Conn would be.
func (r *routed) fedTraffic(gc gnet.Conn, pc *pconn) gnet.Action {
	b, _ := gc.Next(-1)
	if pc.fed.push(b) > r.limit {
		r.logRefusal(gc.RemoteAddr(), "read buffer limit reached before the TLS handshake and key")
		return gnet.Close
	}
	return gnet.None
}

// fedToLoop gives a local TLS connection whose key is read back to the
// loop, from the handshake's goroutine, which must not use a.tc again:
// the transport switches to gnet with the bytes the goroutine did not
// read first, and the Conn opens. A connection closed meanwhile is gone
// already (OnClose counted it out).
func (r *routed) fedToLoop(ref fedRef, a *tlsArrival) {
	err := r.shard.run(func() {
		if !ref.live() {
			return
		}
		a.tr.pending = ref.f.take()
		ref.pc.fed = nil
		a.tr.onLoop(ref.gc)
		if r.refuse || r.stopping {
			// The shard stops (or drains refusing): as a Conn opened now
			// would be, the connection is closed before its handler sees it.
			_ = a.tc.CloseWrite()
			_ = ref.gc.Close()
			return
		}
		if r.openTLSConn(ref.gc, ref.pc, a) == gnet.Close {
			_ = ref.gc.Close()
		}
	})
	if err != nil { // the loop has stopped: gnet closes the socket
		_ = ref.f.Close()
	}
}

// fedDetach takes a fed connection's socket off gnet for the relay to its
// owner, from the handshake's goroutine: the loop duplicates the
// descriptor and closes its own, and the transport reads the duplicate,
// after the bytes the goroutine did not read. The duplicate is counted
// in routed.socks (routed.detach). It reports false when the connection
// is gone.
func (r *routed) fedDetach(ref fedRef, tr *tlsTransport) bool {
	type taken struct {
		nc   net.Conn
		rest []byte
	}
	got := make(chan taken, 1)
	err := r.shard.run(func() {
		if !ref.live() {
			got <- taken{}
			return
		}
		nc, rest, err := r.detach(ref.gc)
		if err != nil {
			r.log.Warn("cannot take a TLS connection to relay it", "err", err)
			got <- taken{}
			return
		}
		ref.pc.detached = true
		rest = append(ref.f.take(), rest...)
		ref.pc.fed = nil
		_ = ref.gc.Close()
		got <- taken{nc, rest}
	})
	if err != nil {
		return false
	}
	var t taken
	select {
	case t = <-got:
	case <-r.stopped: // the loop ended before it ran the function
	}
	if t.nc == nil {
		return false
	}
	var nc net.Conn = t.nc
	if len(t.rest) > 0 {
		nc = &prefixReadConn{Conn: nc, prefix: t.rest}
	}
	tr.offLoop(nc)
	if tr.local == nil { // not declared by a PROXY header
		tr.local = t.nc.LocalAddr()
	}
	return true
}
