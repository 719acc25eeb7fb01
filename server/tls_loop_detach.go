package server

import (
	"net"
	"time"
)

// tlsDetach takes a local TLS Conn's socket off gnet (Hijack, or the
// client's FIN while the Conn lives on): a duplicate of the descriptor
// becomes the tls.Conn's transport again, on Go's runtime poller, and the
// decrypted bytes not consumed are returned. gnet closes its own
// descriptor afterwards (the caller sees to it). Ciphertext gnet has
// buffered and not decrypted cannot be, since fill runs at every
// OnTraffic: gnet reads nothing between.
func (r *routed) tlsDetach(c *Conn) (*tlsLoop, []byte, error) {
	t := c.tl
	nc, rest, err := r.detach(c.gc)
	if err != nil {
		return nil, nil, err
	}
	if len(t.tr.pending) > 0 { // what a fed handshake left, not decrypted yet (a hijack in OnOpen)
		rest = append(t.tr.pending, rest...)
		t.tr.pending = nil
	}
	if len(rest) > 0 { // only as above (see the doc); keep them in order anyway
		nc = &prefixReadConn{Conn: nc, prefix: rest}
	}
	t.tr.offLoop(nc)
	in := append([]byte(nil), t.in[t.head:]...)
	t.in, t.head = nil, 0
	c.tl, c.gc = nil, nil
	c.sock = true // detach counted the duplicate
	return t, in, nil
}

// tlsKeepAfterEOF keeps a local TLS Conn open after the client's FIN for
// the handler to write later, as keepAfterEOF does for a plain one: the
// tls.Conn goes on as a stream, and the ciphertext gnet had not sent yet
// goes first, from the Conn's copy, written by the stream's writer.
func (r *routed) tlsKeepAfterEOF(c *Conn) bool {
	pending := c.gc.OutboundBuffered()
	gc := c.gc
	t, in, err := r.tlsDetach(c)
	if err != nil {
		r.log.Warn("cannot keep a half-closed TLS connection", "err", err)
		return false
	}
	if pending > 0 {
		if err := r.eng.Forget(gc.Fd()); err != nil {
			r.log.Warn("a half-closed connection may lose the end of its reply", "err", err)
			pending = 0
		}
	}
	unsent := c.unsent.take(pending)
	s := newStream(c, t.tc)
	s.in = in
	s.started = true // nothing more to read
	c.st = s
	r.offLoop[c] = struct{}{}
	if len(unsent) > 0 {
		// The writer sends the ciphertext on the socket itself, then
		// whatever the handler queues through TLS.
		s.writing = true
		raw := t.tr.nc
		go func() {
			_ = raw.SetWriteDeadline(time.Now().Add(r.writeTimeout))
			_, _ = raw.Write(unsent)
			s.writeLoop()
		}()
	}
	if t.wclosed {
		s.finish = finishCloseWrite
	}
	return true
}

// tlsHijack gives a hijacker a local TLS Conn's tls.Conn, on Go's runtime
// poller, with the decrypted bytes not consumed in front.
func (c *Conn) tlsHijack() (net.Conn, []byte, error) {
	t, in, err := c.rt.tlsDetach(c)
	if err != nil {
		return nil, nil, err
	}
	return t.tc, in, nil
}

// prefixReadConn is a net.Conn whose reads return prefix first.
type prefixReadConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixReadConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
