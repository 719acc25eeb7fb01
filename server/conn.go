package server

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Errors a Conn reports, to its writer or to Handler.OnClose.
var (
	// ErrConnClosed is returned by writes to a connection that is closed
	// or closing.
	ErrConnClosed = errors.New("server: connection closed")
	// ErrSlowReader closes a connection whose client does not read what
	// the handler writes: more than Config.ConnBufferLimit bytes waited
	// to be sent.
	ErrSlowReader = errors.New("server: client too slow: write buffer limit reached")
	// ErrInputLimit closes a connection whose handler left more than
	// Config.ConnBufferLimit bytes unconsumed.
	ErrInputLimit = errors.New("server: read buffer limit reached")
	// ErrServerClosed is given to OnClose for the connections still open
	// when the shard stops: a drain whose deadline passed, or a stop.
	ErrServerClosed = errors.New("server: shard stopped")
)

// Conn is a client connection as its Handler sees it, on the shard that
// owns its key. A Conn accepted by this worker, one handed off by
// another and one relayed by another behave alike; Forwarded and Relayed
// tell them apart.
//
// Conn's methods must be called on the shard's event loop (from Handler
// methods, or functions queued with Shard.Run). Slices returned by Peek
// and Next are valid until the handler returns or consumes more.
type Conn struct {
	rt      *routed
	key     []byte
	direct  bool
	fwd     bool // accepted by another worker
	relayed bool // its bytes come over a mesh stream from that worker
	via     int  // the shard whose worker accepted the connection
	viaNode int  // the node that accepted it, plus one; 0: this node
	remote  net.Addr
	local   net.Addr
	tls     *TLSInfo
	ctx     any
	// h, when set, serves this Conn instead of the shard's handler: the
	// two sides of a forwarded TLS connection on the worker that
	// accepted it (spliceHandler, tls_splice.go). The shard's handler
	// never sees them, and they are not counted as its connections.
	h Handler

	gc  gnet.Conn // local backend; nil once detached or for a stream
	pre []byte    // local backend: bytes read before gnet had the socket
	// unsent is the local backend's copy of the bytes gnet holds in its
	// outbound buffer (the last OutboundBuffered() bytes written): gnet
	// drops them when it closes at the client's EOF, and a Conn that
	// lives on after EOF sends them itself (unsent.go).
	unsent unsent
	st     *stream   // stream backend: relayed, forwarded TLS, or detached at EOF
	tl     *tlsLoop  // local TLS backend, with gc (tls_loop.go)
	hj     *hijacked // taken off the loop by Hijack

	opening  bool  // in OnOpen: Hijack is allowed
	hijacked bool  // taken off the loop by Hijack
	closing  bool  // Close was called: no more handler input
	closed   bool  // OnClose has run
	eof      bool  // the client shut down its write side
	abortErr error // why the runtime closed a local connection

	inSeen      int           // bytes in gnet's buffer already counted in (stats.go)
	sock        bool          // holds a client socket off gnet, counted in routed.socks
	idleTimeout time.Duration // 0: none
	active      time.Duration // the sweep clock when the last byte came (limits.go)
}

// Key returns the connection's key (nil for a direct connection). The
// slice belongs to the Conn: do not modify it.
func (c *Conn) Key() []byte { return c.key }

// Shard returns the shard serving the connection.
func (c *Conn) Shard() *Shard { return c.rt.shard }

// Direct reports whether the client named this shard with a direct
// preamble instead of a key.
func (c *Conn) Direct() bool { return c.direct }

// Forwarded reports whether another worker accepted the connection: it
// handed the socket to this one, or relays its bytes (Relayed).
func (c *Conn) Forwarded() bool { return c.fwd }

// Relayed reports whether the connection's bytes reach this worker over a
// mesh stream from the worker that accepted it (a TLS connection accepted
// by another worker, or any in relay mode), rather than on its own
// socket. A relayed connection closes if that worker dies.
func (c *Conn) Relayed() bool { return c.relayed }

// AcceptedBy returns the index of the shard whose worker accepted the
// connection: Shard().Index() unless the connection was forwarded.
func (c *Conn) AcceptedBy() int { return c.via }

// AcceptedByNode returns the cluster node that accepted the connection:
// the shard's own (Shard.Node), or the node that relayed it here. For a
// connection from another node, AcceptedBy is this shard's index.
func (c *Conn) AcceptedByNode() int {
	if c.viaNode > 0 {
		return c.viaNode - 1
	}
	return c.rt.self
}

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr returns the address the client connected to (on the worker
// that accepted it).
func (c *Conn) LocalAddr() net.Addr {
	if c.local == nil && c.gc != nil {
		if a, err := c.rt.eng.LocalAddr(c.gc); err == nil {
			c.local = a
		}
	}
	return c.local
}

// TLS returns the summary of the connection's TLS session, or nil when
// the client connected without TLS.
func (c *Conn) TLS() *TLSInfo { return c.tls }

// Context returns the value set with SetContext.
func (c *Conn) Context() any { return c.ctx }

// SetContext attaches a value of the handler's to the connection.
func (c *Conn) SetContext(v any) { c.ctx = v }

// Buffered returns the number of bytes read and not yet consumed.
func (c *Conn) Buffered() int {
	switch {
	case c.tl != nil:
		return c.tl.buffered()
	case c.gc != nil:
		return len(c.pre) + c.gc.InboundBuffered()
	case c.st != nil:
		return c.st.buffered()
	}
	return 0
}

// Peek returns the next n buffered bytes without consuming them, or all
// of them when n <= 0. It returns io.ErrShortBuffer when fewer than n are
// buffered.
func (c *Conn) Peek(n int) ([]byte, error) {
	switch {
	case c.tl != nil:
		return c.tl.peek(n)
	case len(c.pre) > 0:
		return peekIn(c.pre, n)
	case c.gc != nil:
		return c.gc.Peek(n)
	case c.st != nil:
		return c.st.peek(n)
	}
	return nil, peekEmpty(n)
}

// Next returns the next n buffered bytes and consumes them, or all of
// them when n <= 0. It returns io.ErrShortBuffer when fewer than n are
// buffered, and consumes nothing then.
func (c *Conn) Next(n int) ([]byte, error) {
	switch {
	case c.tl != nil:
		b, err := c.tl.peek(n)
		if err == nil {
			c.tl.discard(len(b))
		}
		return b, err
	case len(c.pre) > 0:
		b, err := peekIn(c.pre, n)
		if err == nil {
			c.consumePre(len(b))
		}
		return b, err
	case c.gc != nil:
		b, err := c.gc.Next(n)
		c.consumed(len(b))
		return b, err
	case c.st != nil:
		b, err := c.st.peek(n)
		if err == nil {
			c.st.discard(len(b))
		}
		return b, err
	}
	return nil, peekEmpty(n)
}

// Discard consumes up to n buffered bytes and returns how many it
// consumed. n <= 0 consumes nothing.
func (c *Conn) Discard(n int) (int, error) {
	if n <= 0 {
		return 0, nil // gnet would discard everything
	}
	switch {
	case c.tl != nil:
		return c.tl.discard(n), nil
	case len(c.pre) > 0:
		n = min(n, len(c.pre))
		c.consumePre(n)
		return n, nil
	case c.gc != nil:
		n, err := c.gc.Discard(n)
		c.consumed(n)
		return n, err
	case c.st != nil:
		return c.st.discard(n), nil
	}
	return 0, nil
}

// peekIn serves Peek and Next from b. While a Conn has bytes in pre, the
// runtime moves what gnet reads behind them (routed.data), so pre holds
// everything buffered.
func peekIn(b []byte, n int) ([]byte, error) {
	if n > len(b) {
		return nil, io.ErrShortBuffer
	}
	if n > 0 {
		b = b[:n]
	}
	return b, nil
}

// consumePre consumes n bytes of pre, and lets go of it when it is empty.
func (c *Conn) consumePre(n int) {
	c.pre = c.pre[n:]
	if len(c.pre) == 0 {
		c.pre = nil
	}
}

// takePre returns pre and empties it.
func (c *Conn) takePre() []byte {
	b := c.pre
	c.pre = nil
	return b
}

func peekEmpty(n int) error {
	if n > 0 {
		return io.ErrShortBuffer
	}
	return nil
}

// Write queues p to be sent to the client and returns at once; p may be
// reused when Write returns. Past Config.ConnBufferLimit bytes waiting to
// be sent the client is too slow: the connection is closed with
// ErrSlowReader.
func (c *Conn) Write(p []byte) (int, error) {
	if c.closing || c.closed {
		return 0, ErrConnClosed
	}
	switch {
	case c.tl != nil:
		return c.tl.write(c, p)
	case c.gc != nil:
		n, err := c.gc.Write(p)
		c.counted(0, n)
		if err != nil {
			return n, err
		}
		c.unsent.wrote(p, c.gc.OutboundBuffered())
		if c.gc.OutboundBuffered() > c.rt.limit {
			c.abort(ErrSlowReader)
			return n, ErrSlowReader
		}
		return n, nil
	case c.st != nil:
		return c.st.write(p)
	}
	return 0, ErrConnClosed
}

// CloseWrite shuts down the sending side once what was written is sent
// (TCP half-close); the client reads EOF. The connection stays open for
// reading until Close.
func (c *Conn) CloseWrite() error {
	if c.closing || c.closed {
		return ErrConnClosed
	}
	switch {
	case c.tl != nil:
		c.tl.closeNotify() // TLS's half-close; the socket stays open
		return nil
	case c.gc != nil:
		return c.localCloseWrite()
	case c.st != nil:
		c.st.closeWrite()
		return nil
	}
	return ErrConnClosed
}

// Close closes the connection once what was written is sent (a client
// that reads nothing for 30 s loses what is left). OnClose follows, with
// a nil error.
func (c *Conn) Close() error {
	if c.closing || c.closed {
		return nil
	}
	c.closing = true
	switch {
	case c.tl != nil:
		c.tl.closeNotify()
		if c.gc == nil {
			return nil // the alert's write failed: gnet closed it, OnClose ran
		}
		return c.localClose(time.Now().Add(c.rt.writeTimeout))
	case c.gc != nil:
		return c.localClose(time.Now().Add(c.rt.writeTimeout))
	case c.st != nil:
		c.st.close()
		c.rt.queueClosed(c, nil)
	}
	return nil
}

// abort closes the connection at once, dropping what was not sent, and
// tells the handler why.
func (c *Conn) abort(err error) {
	if c.closing || c.closed {
		return
	}
	c.rt.log.Info("closing a connection", "remote", c.remote, "key", printable(c.key), "err", err)
	c.fail(err)
}

// fail closes the connection at once, dropping what was not sent, and
// gives err to its OnClose, whatever the backend; a hijacked connection's
// net.Conn is closed under its hijacker.
func (c *Conn) fail(err error) {
	if c.closing || c.closed {
		return
	}
	c.closing = true
	switch {
	case c.hj != nil:
		// The hijacker's own Close must not win with its nil error:
		// queue err first, then close the net.Conn under it.
		c.hj.once.Do(func() { c.rt.queueClosed(c, err) })
		_ = c.hj.Conn.Close()
	case c.gc != nil:
		c.abortErr = err
		_ = c.gc.Close()
	case c.st != nil:
		c.st.abort()
		c.rt.queueClosed(c, err)
	}
}
