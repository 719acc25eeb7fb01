package server

import (
	"errors"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// tlsTransport is what a TLS connection's tls.Conn reads and writes:
// first a tlsFed, which the loop feeds (the handshake and the preamble,
// on a goroutine: crypto/tls makes handshake errors sticky, so a
// handshake cannot run dry and resume), then the gnet connection itself,
// on the event loop (onLoop), with what the goroutine left unread first
// (pending). On the loop, Read hands over what gnet has read and
// otherwise returns errWouldBlock, an error whose Temporary() is true:
// crypto/tls does not record such an error (conn.go, readRecordOrCCS) and
// keeps a partial record in its own buffer, so the next Read, in the next
// OnTraffic, goes on from there. Write appends to gnet's outbound buffer.
// Off the loop again (a relay, a hijack, a Conn living on after the
// client's FIN), it is a duplicate of the socket on Go's runtime poller
// (offLoop).
type tlsTransport struct {
	nc net.Conn  // before onLoop
	gc gnet.Conn // after onLoop; loop only
	// pending is ciphertext read before onLoop that crypto/tls has not
	// read yet (the bytes a fed handshake left, tls_fed.go): Read on the
	// loop returns it before what gnet holds.
	pending []byte
	local   net.Addr
	remote  net.Addr
	// wrote is told of every write on the loop, with what gnet holds
	// unsent after it (the Conn's unsent copy).
	wrote func(p []byte, pending int)
	// dead: a write on the loop failed, and gnet closed the connection
	// then and there (OnClose has run): gc is not to be used again.
	dead bool
}

func newTLSTransport(nc net.Conn) *tlsTransport {
	return &tlsTransport{nc: nc, local: nc.LocalAddr(), remote: nc.RemoteAddr()}
}

// wouldBlock is the temporary error of a transport on the loop with no
// byte buffered.
type wouldBlock struct{}

func (wouldBlock) Error() string   { return "server: no TLS bytes buffered" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

// errWouldBlock is what a transport on the loop returns when gnet has no
// byte buffered.
var errWouldBlock net.Error = wouldBlock{}

// isWouldBlock reports whether err is errWouldBlock.
func isWouldBlock(err error) bool { return errors.Is(err, errWouldBlock) }

// onLoop switches the transport to gc, on the loop. The net.Conn is not
// used again (gnet closes it: Register took a duplicate).
func (t *tlsTransport) onLoop(gc gnet.Conn) {
	t.gc, t.nc = gc, nil
}

// offLoop switches the transport back to a net.Conn (a duplicate of the
// socket gnet is to forget), on the loop.
func (t *tlsTransport) offLoop(nc net.Conn) {
	t.gc, t.nc = nil, nc
}

func (t *tlsTransport) Read(p []byte) (int, error) {
	if t.gc == nil {
		return t.nc.Read(p)
	}
	if t.dead {
		return 0, net.ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(t.pending) > 0 {
		n := copy(p, t.pending)
		if t.pending = t.pending[n:]; len(t.pending) == 0 {
			t.pending = nil
		}
		return n, nil
	}
	if t.gc.InboundBuffered() == 0 {
		return 0, errWouldBlock
	}
	return t.gc.Read(p)
}

func (t *tlsTransport) Write(p []byte) (int, error) {
	if t.gc == nil {
		return t.nc.Write(p)
	}
	if t.dead {
		return 0, net.ErrClosed
	}
	n, err := t.gc.Write(p)
	switch {
	case err != nil:
		t.dead = true
	case t.wrote != nil:
		t.wrote(p, t.gc.OutboundBuffered())
	}
	return n, err
}

// Close closes the net.Conn; on the loop it does nothing: the Conn closes
// the gnet connection itself, once what was written is sent.
func (t *tlsTransport) Close() error {
	if t.gc == nil {
		return t.nc.Close()
	}
	return nil
}

func (t *tlsTransport) LocalAddr() net.Addr  { return t.local }
func (t *tlsTransport) RemoteAddr() net.Addr { return t.remote }

// SetDeadline and the others apply to the net.Conn; on the loop they do
// nothing (the idle sweep and the write limit bound a Conn there).
func (t *tlsTransport) SetDeadline(d time.Time) error {
	if t.gc == nil {
		return t.nc.SetDeadline(d)
	}
	return nil
}

func (t *tlsTransport) SetReadDeadline(d time.Time) error {
	if t.gc == nil {
		return t.nc.SetReadDeadline(d)
	}
	return nil
}

func (t *tlsTransport) SetWriteDeadline(d time.Time) error {
	if t.gc == nil {
		return t.nc.SetWriteDeadline(d)
	}
	return nil
}
