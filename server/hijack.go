package server

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// ErrHijack is returned by Conn.Hijack outside OnOpen.
var ErrHijack = errors.New("server: Hijack is only possible in OnOpen")

// Hijack takes the connection off the event loop and returns it as a
// blocking net.Conn, for a handler that only relays bytes (the proxy
// handler does): its reads return the bytes already buffered first, and
// it supports CloseWrite. It may only be called from OnOpen. The handler
// gets no more calls for c but one: OnClose, with a nil error, once the
// caller has closed the net.Conn (or with ErrServerClosed if the shard
// stops first, which closes it). The caller must Close the net.Conn. A
// local or handed-off connection's socket is handed over as it is, a
// local TLS connection's tls.Conn (on the socket, off the loop), and a
// relayed connection's stream. A drain waits for hijacked
// connections too.
func (c *Conn) Hijack() (net.Conn, error) {
	if !c.opening || c.closing || c.closed || c.hijacked {
		return nil, ErrHijack
	}
	var (
		nc     net.Conn
		prefix []byte
		queued *stream
	)
	switch {
	case c.tl != nil:
		var err error
		if nc, prefix, err = c.tlsHijack(); err != nil {
			return nil, err
		}
	case c.gc != nil:
		_ = c.LocalAddr() // read it while the socket is ours
		var (
			rest []byte
			err  error
		)
		if nc, rest, err = c.rt.detach(c.gc); err != nil {
			return nil, err
		}
		prefix = append(c.takePre(), rest...)
		c.gc = nil // gnet closes its descriptor when OnOpen returns
		c.sock = true
	case c.st != nil:
		nc = c.st.nc
		prefix = c.st.in[c.st.head:]
		c.st.in, c.st.head = nil, 0
		queued = c.st
	default:
		return nil, ErrHijack
	}
	c.hijacked = true
	delete(c.rt.idleConns, c) // the hijacker sets its own deadlines
	c.hj = &hijacked{Conn: nc, prefix: prefix, c: c, queued: queued}
	c.rt.offLoop[c] = struct{}{}
	return c.hj, nil
}

// hijacked is a Conn taken off the loop.
type hijacked struct {
	net.Conn
	prefix []byte
	c      *Conn
	once   sync.Once
	// queued is the stream a relayed Conn was backed by: what it queued
	// before the hijack (the owner's StreamAccepted, the handler's first
	// bytes) goes out before anything the hijacker writes.
	queued  *stream
	flushed sync.Once
	// in and out count the bytes read and written through it (the
	// shard's totals get them when it closes: stats.go). Per connection,
	// so the relay goroutines of different connections share nothing.
	in, out atomic.Uint64
}

func (h *hijacked) Read(p []byte) (int, error) {
	if len(h.prefix) > 0 {
		n := copy(p, h.prefix)
		h.prefix = h.prefix[n:]
		return n, nil // counted when the Conn opened
	}
	n, err := h.Conn.Read(p)
	h.in.Add(uint64(n))
	return n, err
}

// flush waits for what the stream queued before the hijack, once.
func (h *hijacked) flush() {
	h.flushed.Do(func() {
		if h.queued != nil {
			h.queued.flush()
		}
	})
}

func (h *hijacked) Write(p []byte) (int, error) {
	h.flush()
	n, err := h.Conn.Write(p)
	h.out.Add(uint64(n))
	return n, err
}

// CloseWrite half-closes the connection.
func (h *hijacked) CloseWrite() error {
	h.flush()
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("server: connection cannot half-close")
}

// Close closes the connection; the handler's OnClose follows on the loop.
func (h *hijacked) Close() error {
	h.flush()
	err := h.Conn.Close()
	h.once.Do(func() { h.c.rt.queueClosed(h.c, nil) })
	return err
}
