package server

import (
	"errors"
	"fmt"
	"net"
	"runtime/debug"
)

// ErrHandlerPanic is what OnClose gets, wrapped, for a connection closed
// because a Handler method panicked on it: errors.Is(err, ErrHandlerPanic)
// holds, and the error's text names the method and the panic's value.
var ErrHandlerPanic = errors.New("server: handler panicked")

// panicError is the error given to OnClose after a panic in a Handler
// method of the connection.
type panicError struct {
	method string
	value  any
}

func (e *panicError) Error() string {
	return fmt.Sprintf("%v in %s: %v", ErrHandlerPanic, e.method, e.value)
}

func (e *panicError) Unwrap() error { return ErrHandlerPanic }

// call runs m (a Handler method: Handler.OnOpen, Handler.OnData,
// Handler.OnEOF) for c on the loop. Unless Config.CrashOnPanic is set, a
// panic in it is recovered: it is logged with its stack and counted, c is
// closed at once, and its OnClose follows with an error that wraps
// ErrHandlerPanic. It reports whether m returned normally.
func (r *routed) call(c *Conn, method string, m func(Handler, *Conn)) (ok bool) {
	h := r.handlerOf(c)
	if r.crashOnPanic {
		m(h, c)
		return true
	}
	defer func() {
		if v := recover(); v != nil {
			ok = false
			r.connPanicked(c, method, v)
		}
	}()
	m(h, c)
	return true
}

// callClose runs OnClose for c, recovering a panic as call does; c is
// closed already, so nothing more is done to it.
func (r *routed) callClose(c *Conn, err error) {
	h := r.handlerOf(c)
	if r.crashOnPanic {
		h.OnClose(c, err)
		return
	}
	defer func() {
		if v := recover(); v != nil {
			r.connPanicked(c, "OnClose", v)
		}
	}()
	h.OnClose(c, err)
}

// handlerOf returns the Handler of c: its own (Conn.h), or the shard's.
func (r *routed) handlerOf(c *Conn) Handler {
	if c.h != nil {
		return c.h
	}
	return r.handler
}

// connPanicked logs and counts a panic of the handler on c, and closes c
// (c.fail does nothing to a Conn already closed: a panic in OnClose).
// It runs deferred, after the recover, so the stack it logs is the
// panic's.
func (r *routed) connPanicked(c *Conn, method string, v any) {
	r.panics.Add(1)
	r.log.Error("handler panicked; closing its connection", "method", method,
		"key", printable(c.key), "direct", c.direct, "remote", addrString(c.remote),
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	c.opening = false
	c.fail(&panicError{method: method, value: v})
}

// guard returns fn, wrapped so that a panic in it is recovered, logged
// and counted unless Config.CrashOnPanic is set: what Shard.Run and
// Shard.AfterFunc run, user code with no connection to close.
func (r *routed) guard(fn func()) func() {
	if r.crashOnPanic {
		return fn
	}
	return func() {
		defer func() {
			if v := recover(); v != nil {
				r.panics.Add(1)
				r.log.Error("a function run on the loop panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
		}()
		fn()
	}
}

// addrString renders an address for a log line as text (a JSON log
// would otherwise spell a *net.TCPAddr's fields out).
func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
