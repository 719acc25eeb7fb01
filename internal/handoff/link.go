package handoff

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/subordinate/subordinate/frame"
)

// Errors of a Link.
var (
	// ErrFull is returned by TrySend when the peer's socket has no room:
	// the peer is slower than the hand-offs to it. Send waits instead.
	ErrFull = errors.New("handoff: peer socket full")
	// ErrPeerGone is returned when the peer's end is closed: the peer
	// worker exited.
	ErrPeerGone = errors.New("handoff: peer gone")
	// ErrBadMessage is returned by Receive for a datagram that is not one
	// hand-off message with exactly one socket; the datagram is dropped
	// and its descriptors closed.
	ErrBadMessage = errors.New("handoff: bad message")
)

// Pair makes the two ends of a hand-off link: a Unix SOCK_SEQPACKET
// socketpair, both ends close-on-exec. A datagram is never split or
// merged, so any number of goroutines may send on one end.
func Pair() (a, b *os.File, err error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("handoff: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "handoff"), os.NewFile(uintptr(fds[1]), "handoff"), nil
}

// Supported reports whether this system can make hand-off links (darwin
// has no SOCK_SEQPACKET for Unix sockets).
func Supported() bool {
	a, b, err := Pair()
	if err != nil {
		return false
	}
	a.Close()
	b.Close()
	return true
}

// Link is one end of a hand-off socketpair. TrySend may be called from
// any goroutine (the event loop calls it); Send from any goroutine;
// Receive from one goroutine at a time.
type Link struct {
	uc *net.UnixConn
	rc syscall.RawConn
}

// NewLink makes a Link of f, one end of a socketpair from Pair. It takes
// ownership of f.
func NewLink(f *os.File) (*Link, error) {
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("handoff: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("handoff: %T is not a Unix socket", c)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("handoff: %w", err)
	}
	return &Link{uc: uc, rc: rc}, nil
}

// Close closes the link. A blocked Receive returns.
func (l *Link) Close() error { return l.uc.Close() }

// TrySend sends msg with the socket fd without waiting: it returns
// ErrFull when the peer's socket has no room, and an error wrapping
// ErrPeerGone when the peer is gone. On success the peer holds its own
// reference to the socket, and the caller closes fd.
func (l *Link) TrySend(msg []byte, fd int) error {
	oob := unix.UnixRights(fd)
	var err error
	cerr := l.rc.Control(func(s uintptr) {
		err = unix.Sendmsg(int(s), msg, oob, nil, unix.MSG_DONTWAIT)
	})
	if cerr != nil {
		return fmt.Errorf("handoff: send: %w: %v", ErrPeerGone, cerr)
	}
	return sendErr(err)
}

// Send sends msg with the socket fd, waiting until deadline for room in
// the peer's socket. Errors are as TrySend's, and os.ErrDeadlineExceeded
// when the deadline passed.
func (l *Link) Send(msg []byte, fd int, deadline time.Time) error {
	oob := unix.UnixRights(fd)
	// The write deadline is the socket's, shared by concurrent senders:
	// each sets its own, so one may wait a little past its deadline or
	// give up a little before it; every one of them is bounded.
	_ = l.uc.SetWriteDeadline(deadline)
	var err error
	cerr := l.rc.Write(func(s uintptr) bool {
		err = unix.Sendmsg(int(s), msg, oob, nil, unix.MSG_DONTWAIT)
		return !errors.Is(err, unix.EAGAIN)
	})
	if cerr != nil {
		if errors.Is(cerr, os.ErrDeadlineExceeded) {
			return fmt.Errorf("handoff: send: %w", os.ErrDeadlineExceeded)
		}
		return fmt.Errorf("handoff: send: %w: %v", ErrPeerGone, cerr)
	}
	return sendErr(err)
}

func sendErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EAGAIN):
		return ErrFull
	case errors.Is(err, unix.EPIPE), errors.Is(err, unix.ECONNRESET), errors.Is(err, unix.ECONNREFUSED), errors.Is(err, unix.ENOTCONN):
		return fmt.Errorf("handoff: send: %w: %v", ErrPeerGone, err)
	}
	return fmt.Errorf("handoff: send: %w", err)
}

// Buffers are what Receive reads into; one per receiving goroutine.
type Buffers struct {
	msg []byte
	oob []byte
}

// NewBuffers returns buffers for Receive, sized for the largest message.
func NewBuffers() *Buffers {
	// Room for a few descriptors more than the one expected, so that a
	// peer sending too many is seen (and they are closed), not truncated.
	return &Buffers{msg: make([]byte, frame.MaxHandoffSize+1), oob: make([]byte, unix.CmsgSpace(4*8))}
}

// Receive reads the next datagram. It returns its bytes (valid until the
// next Receive with the same Buffers) and the socket that came with it,
// which the caller owns. A datagram without exactly one socket, or cut
// short, gives ErrBadMessage (its descriptors closed); the link goes on.
// io.EOF means the peer closed its end.
func (l *Link) Receive(b *Buffers) (msg []byte, fd int, err error) {
	n, oobn, flags, _, err := l.uc.ReadMsgUnix(b.msg, b.oob)
	var fds []int
	if oobn > 0 {
		fds = parseRights(b.oob[:oobn])
	}
	if err != nil {
		closeFDs(fds)
		return nil, -1, err
	}
	switch {
	case flags&unix.MSG_CTRUNC != 0:
		closeFDs(fds)
		return nil, -1, fmt.Errorf("%w: control data truncated (descriptor limit?)", ErrBadMessage)
	case flags&unix.MSG_TRUNC != 0 || n > frame.MaxHandoffSize:
		closeFDs(fds)
		return nil, -1, fmt.Errorf("%w: datagram larger than %d bytes", ErrBadMessage, frame.MaxHandoffSize)
	case len(fds) != 1:
		closeFDs(fds)
		return nil, -1, fmt.Errorf("%w: %d descriptors, want 1", ErrBadMessage, len(fds))
	}
	return b.msg[:n], fds[0], nil
}

// parseRights returns the descriptors of the SCM_RIGHTS messages in oob.
func parseRights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		if r, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, r...)
		}
	}
	return fds
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}
