package server

import (
	"errors"
	"net"
	"sync"
)

// ErrHijack is returned by Conn.Hijack outside OnOpen.
var ErrHijack = errors.New("server: Hijack is only possible in OnOpen")

// Hijack takes the connection off the event loop and returns it as a
// blocking net.Conn, for a handler that only relays bytes (the proxy
// handler does): its reads return the bytes already buffered first, and
// it supports CloseWrite. It may only be called from OnOpen. The handler
// gets no more calls for c, and the caller must Close the net.Conn. A
// local connection's socket is handed over as it is; a forwarded or TLS
// connection's stream is. A drain waits for hijacked connections too.
func (c *Conn) Hijack() (net.Conn, error) {
	if !c.opening || c.closing || c.closed {
		return nil, ErrHijack
	}
	var (
		nc     net.Conn
		prefix []byte
	)
	switch {
	case c.gc != nil:
		fd, err := c.gc.Dup()
		if err != nil {
			return nil, err
		}
		if nc, err = fileConn(fd); err != nil {
			return nil, err
		}
		if c.gc.InboundBuffered() > 0 {
			b, _ := c.gc.Next(-1)
			prefix = append([]byte(nil), b...)
		}
	case c.st != nil:
		nc = c.st.nc
		prefix = c.st.in[c.st.head:]
		c.st.in, c.st.head = nil, 0
	default:
		return nil, ErrHijack
	}
	c.hijacked = true
	c.rt.forwarding.Add(1)
	return &hijacked{Conn: nc, prefix: prefix, rt: c.rt}, nil
}

// hijacked is a Conn taken off the loop.
type hijacked struct {
	net.Conn
	prefix []byte
	rt     *routed
	once   sync.Once
}

func (h *hijacked) Read(p []byte) (int, error) {
	if len(h.prefix) > 0 {
		n := copy(p, h.prefix)
		h.prefix = h.prefix[n:]
		return n, nil
	}
	return h.Conn.Read(p)
}

// CloseWrite half-closes the connection.
func (h *hijacked) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("server: connection cannot half-close")
}

func (h *hijacked) Close() error {
	err := h.Conn.Close()
	h.once.Do(func() {
		if h.rt.forwarding.Add(-1) == 0 {
			_ = h.rt.shard.Run(h.rt.maybeDrained)
		}
	})
	return err
}
