package gnetx

import (
	"errors"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Adopting a connected socket
//
// gnet's public way to give its loop a connection it did not accept,
// Engine.Register with a net.Conn, is made for a connection dialled now
// and then: the caller wraps the descriptor in a net.Conn (a dup, fcntl,
// getsockopt, getsockname, getpeername and a registration with Go's
// poller), and gnet submits a goroutine to its pool that duplicates the
// descriptor again, parses the addresses back from strings, queues the
// registration on the loop, waits for it and closes the net.Conn (another
// epoll_ctl and close). For a worker that is handed half of its
// connections by its peers, that is most of what a hand-off costs.
//
// Adopt does what gnet's accept path does with a socket it accepted
// itself (acceptor_unix.go, accept0): newStreamConn, then the loop's
// register0, which adds the descriptor to the poller, stores the
// connection and calls OnOpen. Those are unexported, so they are reached
// by go:linkname, with gnet's *eventloop and *conn as opaque pointers. The
// version of gnet is pinned in go.mod; TestAdopt fails if a new version
// changes what these functions do, and the signatures below must be
// checked against gnet's source at every upgrade (a mismatch is not a
// compile error). An Engine.RegisterFD in gnet itself would replace this
// file.

//go:linkname newStreamConn github.com/panjf2000/gnet/v2.newStreamConn
func newStreamConn(proto string, fd int, el unsafe.Pointer, sa unix.Sockaddr, localAddr, remoteAddr net.Addr) unsafe.Pointer

//go:linkname connSetContext github.com/panjf2000/gnet/v2.(*conn).SetContext
func connSetContext(c unsafe.Pointer, ctx any)

//go:linkname loopRegister github.com/panjf2000/gnet/v2.(*eventloop).register0
func loopRegister(el unsafe.Pointer, c unsafe.Pointer) error

// ErrNotConnected is returned by Inspect for a socket whose peer is gone
// (it was reset on its way here): there is nothing to adopt.
var ErrNotConnected = errors.New("gnetx: socket not connected")

// Socket is a connected stream socket ready for Adopt: its descriptor and
// addresses, read off the loop by Inspect.
type Socket struct {
	FD     int
	proto  string
	sa     unix.Sockaddr
	local  net.Addr
	remote net.Addr
}

// Inspect reads the addresses of the connected TCP or Unix stream socket
// fd (getsockname, getpeername) for Adopt. It returns ErrNotConnected when
// the peer has gone. fd stays the caller's.
func Inspect(fd int) (Socket, error) {
	local, err := sockname(fd)
	if err != nil {
		return Socket{}, err
	}
	sa, err := unix.Getpeername(fd)
	if errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.EINVAL) {
		return Socket{}, ErrNotConnected
	}
	if err != nil {
		return Socket{}, fmt.Errorf("getpeername: %w", err)
	}
	s := Socket{FD: fd, sa: sa, local: local}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		s.proto, s.remote = "tcp", &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
	case *unix.SockaddrInet6:
		s.proto = "tcp"
		a := &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
		if l, ok := local.(*net.TCPAddr); ok {
			a.Zone = l.Zone
		}
		s.remote = a
	case *unix.SockaddrUnix:
		s.proto, s.remote = "unix", &net.UnixAddr{Name: sa.Name, Net: "unix"}
	default:
		return Socket{}, errors.New("getpeername: not a TCP or Unix socket")
	}
	return s, nil
}

// Adopt makes s a connection of the engine's loop, as if the loop had
// accepted it: the handler's OnOpen runs now, inside Adopt, with ctx as
// the connection's Context, and gnet owns the descriptor from then on
// (it closes it when the connection ends). Adopt must run on the loop
// (from Run or a handler callback). The descriptor must be non-blocking
// and must not be registered with Go's poller.
//
// If the loop cannot poll the descriptor, gnet closes it, OnOpen does not
// run, and Adopt returns the error.
func (e *Engine) Adopt(s Socket, ctx any) error {
	el := loopPointer(e)
	if el == nil {
		return ErrStopped
	}
	c := newStreamConn(s.proto, s.FD, el, s.sa, s.local, s.remote)
	connSetContext(c, ctx)
	if err := loopRegister(el, c); err != nil {
		return fmt.Errorf("gnetx: adopt a connection: %w", err)
	}
	return nil
}

// loopPointer returns gnet's *eventloop behind the engine's
// gnet.EventLoop: the data word of the interface value.
func loopPointer(e *Engine) unsafe.Pointer {
	if e.loop == nil {
		return nil
	}
	type iface struct{ tab, data unsafe.Pointer }
	return (*iface)(unsafe.Pointer(&e.loop)).data
}
