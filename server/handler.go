package server

import "github.com/subordinate/subordinate/frame"

// Handler serves the connections a shard owns. Every method runs on the
// shard's single event loop, one call at a time, so state kept per shard
// (a map of rooms, a cache) needs no locks. A method must not block: use
// Shard.Run from another goroutine to come back to the loop.
//
// A Handler sees the same Conn whichever worker accepted the connection:
// forwarded and local connections differ only in Conn.Forwarded.
//
// A panic in a method is recovered, as net/http recovers a panic in a
// request's handler: the runtime logs it with its stack, the connection's
// key and remote address (ERROR), closes that connection at once and
// counts the panic; OnClose follows once, with an error that wraps
// ErrHandlerPanic (none follows a panic in OnClose itself, and a
// connection the handler had already closed gets the OnClose of that
// close). Every other connection of the shard is served on. A panic in
// a function queued with Shard.Run or Shard.AfterFunc is logged and
// counted the same way. Config.CrashOnPanic makes a panic crash the
// worker instead. Panics on goroutines of the handler's own (a hijacked
// connection's, say) are the handler's to recover.
type Handler interface {
	// OnOpen is called once the connection's key has been read and this
	// shard is its owner. Bytes the client sent after the preamble are
	// already buffered and OnData follows if there are any.
	OnOpen(c *Conn)

	// OnData is called when bytes are buffered for c. The handler consumes
	// them with c.Next or c.Discard; bytes it leaves stay buffered for the
	// next call, up to Config.ConnBufferLimit, past which the connection is
	// closed with an error.
	OnData(c *Conn)

	// OnEOF is called when the client has shut down its write side (TCP
	// half-close). The connection can still be written to. The handler
	// closes it when it has sent its last reply.
	OnEOF(c *Conn)

	// OnClose is called once when the connection is gone, with the reason
	// (nil for a close the handler asked for).
	OnClose(c *Conn, err error)
}

// HandlerFactory makes the Handler of one shard. It is called once per
// worker process, on the shard's event loop, before any connection.
type HandlerFactory func(s *Shard) (Handler, error)

// BaseHandler is a Handler that does nothing but close a connection on
// EOF. Embed it to implement only the methods you need.
type BaseHandler struct{}

// OnOpen does nothing.
func (BaseHandler) OnOpen(*Conn) {}

// OnData discards what is buffered.
func (BaseHandler) OnData(c *Conn) { _, _ = c.Discard(c.Buffered()) }

// OnEOF closes the connection once its pending writes are flushed.
func (BaseHandler) OnEOF(c *Conn) { _ = c.Close() }

// OnClose does nothing.
func (BaseHandler) OnClose(*Conn, error) {}

// TLSInfo summarises the TLS session of a connection whose TLS was
// terminated by Subordinate: version, SNI, ALPN and the client
// certificate's subject. It travels in the stream header (docs/PROTOCOL.md),
// so a handler sees it on forwarded connections too.
type TLSInfo = frame.TLSInfo
