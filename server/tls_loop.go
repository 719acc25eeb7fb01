package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"

	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/frame"
)

// tlsReadMin is the room tlsLoop.fill makes in its buffer before each
// Read: one TLS record's plaintext.
const tlsReadMin = 16 << 10

// tlsScratch is the size of the loop's buffer that a TLS Conn decrypts
// into when it has nothing buffered (routed.tlsScratch).
const tlsScratch = 4 * tlsReadMin

// tlsLoop is the backend of a local TLS Conn on the event loop: gnet
// holds the socket (the Conn's gc), crypto/tls decrypts what gnet reads
// in OnTraffic, through a transport on the loop (tlsTransport), and the
// handler's writes are encrypted into gnet's outbound buffer. No goroutine
// and no hand-off per read or write. The handshake and the preamble were
// done on a goroutine (serveTLS); this is the same tls.Conn, with what it
// had buffered.
type tlsLoop struct {
	tc      tlsRecords
	tr      *tlsTransport
	in      []byte // decrypted bytes; in[head:] are not consumed yet
	head    int
	wclosed bool // close_notify sent: no more writes
	// borrowed: in is the loop's scratch buffer, for the OnTraffic at
	// hand only (settle). A Conn whose handler consumes all it gets
	// holds no buffer of its own between reads.
	borrowed bool
}

// tlsRecords is what a tlsLoop reads and writes through: the tls.Conn of
// a handshake this worker did, or the tls13.Conn of a session another
// worker handed off (tls_session.go).
type tlsRecords interface {
	net.Conn
	CloseWrite() error
}

// buffered, peek and discard serve the Conn's read methods.
func (t *tlsLoop) buffered() int { return len(t.in) - t.head }

func (t *tlsLoop) peek(n int) ([]byte, error) { return peekIn(t.in[t.head:], n) }

func (t *tlsLoop) discard(n int) int {
	n = min(n, t.buffered())
	t.head += n
	if t.head == len(t.in) {
		t.in, t.head = t.in[:0], 0
	}
	return n
}

// fill decrypts what gnet has read into in, until crypto/tls needs more
// bytes than gnet has (errWouldBlock, which is not an error here), and
// returns how many plaintext bytes it added. An error is the end of the
// client's bytes: io.EOF after its close_notify (or its FIN at a record
// boundary), or why the TLS session failed.
func (t *tlsLoop) fill(scratch []byte) (int, error) {
	if t.buffered() == 0 {
		t.in, t.head, t.borrowed = scratch[:0], 0, true
	}
	added := 0
	for {
		if t.head > 0 && t.head >= len(t.in)/2 {
			t.in = t.in[:copy(t.in, t.in[t.head:])]
			t.head = 0
		}
		if cap(t.in)-len(t.in) < tlsReadMin {
			grown := make([]byte, len(t.in), 2*cap(t.in)+tlsReadMin)
			copy(grown, t.in)
			t.in, t.borrowed = grown, false
		}
		n, err := t.tc.Read(t.in[len(t.in):cap(t.in)])
		t.in = t.in[:len(t.in)+n]
		added += n
		if err != nil {
			if isWouldBlock(err) {
				return added, nil
			}
			return added, err
		}
	}
}

// settle ends an OnTraffic: bytes left in the loop's scratch buffer are
// copied to the Conn's own, and a drained buffer is let go.
func (t *tlsLoop) settle() {
	switch {
	case t.buffered() == 0:
		t.in, t.head = nil, 0
	case t.borrowed:
		t.in, t.head = append([]byte(nil), t.in[t.head:]...), 0
	}
	t.borrowed = false
}

// write encrypts p into gnet's outbound buffer.
func (t *tlsLoop) write(c *Conn, p []byte) (int, error) {
	if t.wclosed {
		return 0, ErrConnClosed
	}
	n, err := t.tc.Write(p)
	c.counted(0, n)
	if err != nil {
		c.abort(err)
		return n, err
	}
	if c.gc.OutboundBuffered() > c.rt.limit {
		c.abort(ErrSlowReader)
		return n, ErrSlowReader
	}
	return n, nil
}

// closeNotify sends the TLS close_notify alert once: the client reads EOF.
func (t *tlsLoop) closeNotify() {
	if !t.wclosed {
		t.wclosed = true
		_ = t.tc.CloseWrite()
	}
}

// tlsTraffic decrypts what gnet read for a local TLS Conn and gives it to
// the handler, on the loop (OnTraffic).
func (r *routed) tlsTraffic(c *Conn) gnet.Action {
	if c.closing || c.eof {
		_, _ = c.gc.Discard(c.gc.InboundBuffered())
		return gnet.None
	}
	c.active = r.clock
	r.tlsReceive(c, false)
	return gnet.None
}

// tlsReceive decrypts what is buffered and calls OnData when there are
// new bytes (or always, when the Conn opens with bytes buffered), then
// OnEOF at the client's close_notify; it enforces the read buffer limit
// as data does for a plain local Conn.
func (r *routed) tlsReceive(c *Conn, always bool) {
	t := c.tl
	if r.tlsScratch == nil {
		r.tlsScratch = make([]byte, tlsScratch)
	}
	n, err := t.fill(r.tlsScratch)
	defer t.settle()
	c.counted(n, 0)
	if t.buffered() > 0 && (n > 0 || always) {
		r.call(c, "OnData", Handler.OnData)
	}
	if c.closing || c.closed || c.tl != t {
		return
	}
	switch {
	case errors.Is(err, io.EOF):
		c.eof = true
		r.call(c, "OnEOF", Handler.OnEOF)
	case err != nil:
		c.abort(err)
	case t.buffered() > r.limit:
		_, _ = t.tc.Write(frame.AppendError(nil, "read buffer limit reached"))
		c.abort(ErrInputLimit)
	}
}

// tlsArrival is a local TLS connection on its way back into the loop
// after its handshake and preamble (fedToLoop).
type tlsArrival struct {
	tc    *tls.Conn
	tr    *tlsTransport
	key   []byte
	early []byte // decrypted bytes read past the preamble
	info  *TLSInfo
	via   int // the shard that accepted it (another: it was handed off)
}

// openTLSConn opens the local Conn of a TLS connection back on the loop,
// whose transport is on gc already, as pc's Conn.
func (r *routed) openTLSConn(gc gnet.Conn, pc *pconn, a *tlsArrival) gnet.Action {
	c := r.newConn(a.key, a.key == nil, a.via)
	c.gc, c.remote, c.local, c.tls, c.fwd = gc, a.tr.remote, a.tr.local, a.info, a.via != r.info.Index
	c.tl = &tlsLoop{tc: a.tc, tr: a.tr, in: a.early}
	a.tr.wrote = c.unsent.wrote
	pc.conn = c
	return r.openLocal(pc, c)
}
