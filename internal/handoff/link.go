package handoff

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
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
// any goroutine (the event loop calls it); Send and Ack from any
// goroutine; Receive from one goroutine at a time.
//
// A Link keeps every socket it sent until the peer acknowledges it (see
// Ack and Unacked, and ack.go): a peer that dies with hand-offs still in
// its socket, or not yet taken into its event loop, would otherwise
// close those clients without a word.
type Link struct {
	uc *net.UnixConn
	rc syscall.RawConn

	mu      sync.Mutex
	seq     uint32
	pending map[uint32]Pending
	ended   bool // Unacked or Close ran: nothing more is kept
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
	return &Link{uc: uc, rc: rc, pending: make(map[uint32]Pending)}, nil
}

// Close closes the link. A blocked Receive returns. The hand-offs it
// sent that the peer did not acknowledge stay with the link until
// Unacked takes them: whoever runs Receive does, when it fails, so that
// closing a link because its peer is gone (or replaced) loses none.
func (l *Link) Close() error { return l.uc.Close() }

// TrySend sends msg with the socket fd without waiting: it returns
// ErrFull when the peer's socket has no room, and an error wrapping
// ErrPeerGone when the peer is gone. On success the peer holds its own
// reference to the socket, the link keeps another until the peer
// acknowledges it, and the caller closes fd.
func (l *Link) TrySend(msg []byte, fd int) error {
	return l.send(msg, fd, func(hdr []byte, oob []byte) error {
		return l.sendNow([][]byte{hdr, msg}, oob)
	})
}

// Send sends msg with the socket fd, waiting until deadline for room in
// the peer's socket. Errors are as TrySend's, and os.ErrDeadlineExceeded
// when the deadline passed.
func (l *Link) Send(msg []byte, fd int, deadline time.Time) error {
	return l.send(msg, fd, func(hdr []byte, oob []byte) error {
		return l.sendWait([][]byte{hdr, msg}, oob, deadline)
	})
}

// send numbers a hand-off, keeps a duplicate of its socket and a copy of
// its message as pending (before the peer can acknowledge it), and sends
// it with do; a send that fails forgets it.
func (l *Link) send(msg []byte, fd int, do func(hdr, oob []byte) error) error {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("handoff: keep the socket: %w", err)
	}
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		_ = unix.Close(dup)
		return fmt.Errorf("handoff: send: %w: link ended", ErrPeerGone)
	}
	l.seq++
	seq := l.seq
	l.pending[seq] = Pending{Msg: append([]byte(nil), msg...), FD: dup}
	l.mu.Unlock()
	var hdr [headerSize]byte
	if err := do(appendHeader(hdr[:0], kindHandoff, seq), unix.UnixRights(fd)); err != nil {
		l.acked(seq) // forget it: the peer never got it
		return err
	}
	return nil
}

// sendNow sends one datagram without waiting for room.
func (l *Link) sendNow(bufs [][]byte, oob []byte) error {
	var err error
	cerr := l.rc.Control(func(s uintptr) {
		_, err = unix.SendmsgBuffers(int(s), bufs, oob, nil, unix.MSG_DONTWAIT)
	})
	if cerr != nil {
		return fmt.Errorf("handoff: send: %w: %v", ErrPeerGone, cerr)
	}
	return sendErr(err)
}

// sendWait sends one datagram, waiting until deadline for room.
func (l *Link) sendWait(bufs [][]byte, oob []byte, deadline time.Time) error {
	// The write deadline is the socket's, shared by concurrent senders:
	// each sets its own, so one may wait a little past its deadline or
	// give up a little before it; every one of them is bounded.
	_ = l.uc.SetWriteDeadline(deadline)
	var err error
	cerr := l.rc.Write(func(s uintptr) bool {
		_, err = unix.SendmsgBuffers(int(s), bufs, oob, nil, unix.MSG_DONTWAIT)
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
	return &Buffers{msg: make([]byte, headerSize+frame.MaxHandoffSize+1), oob: make([]byte, unix.CmsgSpace(4*8))}
}

// Receive reads the next hand-off. It returns its message (valid until
// the next Receive with the same Buffers), the socket that came with it,
// which the caller owns, and its number, which the caller gives to Ack
// once it is done with it. Acknowledgements of this end's own hand-offs
// are taken on the way. A datagram without exactly one socket, or cut
// short, gives ErrBadMessage (its descriptors closed); the link goes on.
// io.EOF means the peer closed its end.
func (l *Link) Receive(b *Buffers) (msg []byte, fd int, seq uint32, err error) {
	for {
		n, oobn, flags, _, err := l.uc.ReadMsgUnix(b.msg, b.oob)
		var fds []int
		if oobn > 0 {
			fds = parseRights(b.oob[:oobn])
		}
		if err != nil {
			closeFDs(fds)
			return nil, -1, 0, err
		}
		kind, seq, ok := parseHeader(b.msg[:n])
		switch {
		case flags&unix.MSG_CTRUNC != 0:
			closeFDs(fds)
			return nil, -1, 0, fmt.Errorf("%w: control data truncated (descriptor limit?)", ErrBadMessage)
		case flags&unix.MSG_TRUNC != 0 || n > headerSize+frame.MaxHandoffSize:
			closeFDs(fds)
			return nil, -1, 0, fmt.Errorf("%w: datagram larger than %d bytes", ErrBadMessage, headerSize+frame.MaxHandoffSize)
		case !ok:
			closeFDs(fds)
			return nil, -1, 0, fmt.Errorf("%w: no link header", ErrBadMessage)
		case kind == kindAck && len(fds) == 0 && n == headerSize:
			l.acked(seq)
			continue
		case kind != kindHandoff:
			closeFDs(fds)
			return nil, -1, 0, fmt.Errorf("%w: kind %d", ErrBadMessage, kind)
		case len(fds) != 1:
			closeFDs(fds)
			return nil, -1, 0, fmt.Errorf("%w: %d descriptors, want 1", ErrBadMessage, len(fds))
		}
		return b.msg[headerSize:n], fds[0], seq, nil
	}
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
