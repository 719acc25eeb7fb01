package server

// closed runs OnClose for c once, on the loop, and ends its count.
func (r *routed) closed(c *Conn, err error) {
	if c.closed {
		return
	}
	c.closed = true
	delete(r.offLoop, c)
	delete(r.idleConns, c)
	if c.h == nil {
		r.conns--
	}
	r.countHijacked(c)
	r.callClose(c, err)
	r.unsock(c)
	r.release()
}

// drop forgets a Conn that was never opened (no OnOpen, so no OnClose).
func (r *routed) drop(c *Conn) {
	c.closed = true
	delete(r.offLoop, c)
	delete(r.idleConns, c)
	r.unsock(c)
	if c.h == nil {
		r.conns--
	}
	r.release()
}

// unsock counts out the client socket a Conn kept off gnet, if any.
func (r *routed) unsock(c *Conn) {
	if c.sock {
		c.sock = false
		r.socks.Add(-1)
	}
}

// queueClosed runs closed from the loop's queue, so that a handler's
// Close never calls its OnClose from inside another handler method.
func (r *routed) queueClosed(c *Conn, err error) {
	_ = r.shard.run(func() { r.closed(c, err) })
}

// closeOffLoop closes, at shutdown, the open Conns that gnet does not
// know about (streams from other workers, TLS connections, hijacked and
// half-closed ones) and gives each its OnClose, so that every OnOpen has
// its OnClose; gnet then closes its own connections, whose OnClose
// reports ErrServerClosed.
func (r *routed) closeOffLoop() {
	r.stopping = true
	for c := range r.offLoop {
		err := ErrServerClosed
		if c.closing {
			err = nil // the handler had closed it
		}
		switch {
		case c.hj != nil:
			_ = c.hj.Conn.Close()
		case c.st != nil:
			c.st.abort()
		}
		r.closed(c, err)
	}
}
