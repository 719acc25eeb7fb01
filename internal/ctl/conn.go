package ctl

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Limits of one message.
const (
	// MaxMessageSize bounds the JSON of one message.
	MaxMessageSize = 1 << 20
	// MaxFDs bounds the descriptors of one message.
	MaxFDs = 4096
	// fdsPerChunk is how many descriptors ride on one sendmsg: Linux
	// refuses more than SCM_MAX_FD (253) in one control message.
	fdsPerChunk = 250
	// headerSize is the length prefix.
	headerSize = 4
)

// Errors of the control channel.
var (
	// ErrTooLarge is returned for a message over MaxMessageSize.
	ErrTooLarge = errors.New("ctl: message too large")
	// ErrTooManyFDs is returned for a message with more than MaxFDs
	// descriptors.
	ErrTooManyFDs = errors.New("ctl: too many file descriptors")
	// ErrProtocol is returned when the peer breaks the framing: a message
	// claims descriptors that did not arrive, or ancillary data was cut.
	ErrProtocol = errors.New("ctl: protocol error")
	// ErrClosed is returned by Send and Receive after Close.
	ErrClosed = errors.New("ctl: closed")
)

// Conn is one end of a control channel. Send may be called from several
// goroutines; Receive from one at a time.
type Conn struct {
	uc *net.UnixConn

	wmu sync.Mutex

	rmu  sync.Mutex
	rbuf []byte // received bytes not yet consumed
	fds  []int  // received descriptors not yet given to a message
	oob  []byte
	tmp  []byte

	closeOnce sync.Once
}

// New makes a Conn of f, one end of a Unix stream socketpair. New takes
// ownership of f (it is closed; the Conn holds its own descriptor).
func New(f *os.File) (*Conn, error) {
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("ctl: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("ctl: %T is not a Unix socket", c)
	}
	return &Conn{
		uc:  uc,
		oob: make([]byte, syscall.CmsgSpace(fdsPerChunk*4)*2),
		tmp: make([]byte, 64<<10),
	}, nil
}

// Pair makes a control channel: the master's Conn and the worker's end as
// a file to hand to the child process (os/exec ExtraFiles). The caller
// closes child once the process has started.
func Pair() (master *Conn, child *os.File, err error) {
	a, b, err := Socketpair()
	if err != nil {
		return nil, nil, err
	}
	master, err = New(a)
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	return master, b, nil
}

// Close closes the channel. A blocked Receive returns.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.uc.Close()
		c.rmu.Lock()
		closeAll(c.fds)
		c.fds = nil
		c.rmu.Unlock()
	})
	return err
}

// SetReadDeadline sets the deadline of Receive (zero: none).
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of Send (zero: none).
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }

// Send sends m and, with it, the descriptors m.FDs (which stay open and
// owned by the caller).
func (c *Conn) Send(m *Message) error {
	if len(m.FDs) > MaxFDs {
		return ErrTooManyFDs
	}
	m.NFD = len(m.FDs)
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("ctl: encode %s: %w", m.Type, err)
	}
	if len(body) > MaxMessageSize {
		return ErrTooLarge
	}
	frame := make([]byte, headerSize+len(body))
	binary.BigEndian.PutUint32(frame, uint32(len(body)))
	copy(frame[headerSize:], body)

	c.wmu.Lock()
	defer c.wmu.Unlock()
	// The descriptors ride on the first bytes of the frame, at most
	// fdsPerChunk per sendmsg, one byte of frame per chunk but the last.
	fds := m.FDs
	for len(fds) > fdsPerChunk {
		oob := syscall.UnixRights(fds[:fdsPerChunk]...)
		if err := c.writeMsg(frame[:1], oob); err != nil {
			return err
		}
		frame, fds = frame[1:], fds[fdsPerChunk:]
	}
	var oob []byte
	if len(fds) > 0 {
		oob = syscall.UnixRights(fds...)
	}
	return c.writeMsg(frame, oob)
}

func (c *Conn) writeMsg(b, oob []byte) error {
	for len(b) > 0 || len(oob) > 0 {
		n, _, err := c.uc.WriteMsgUnix(b, oob, nil)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return ErrClosed
			}
			return fmt.Errorf("ctl: send: %w", err)
		}
		b, oob = b[n:], nil
	}
	return nil
}

// Receive reads the next message. Its descriptors are in m.FDs. At the end
// of the stream it returns io.EOF (the other process is gone or closed its
// end).
func (c *Conn) Receive() (*Message, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if m, err := c.next(); m != nil || err != nil {
			return m, err
		}
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
}

// next decodes a message from what was received, or returns nil, nil when
// more bytes are needed.
func (c *Conn) next() (*Message, error) {
	if len(c.rbuf) < headerSize {
		return nil, nil
	}
	n := binary.BigEndian.Uint32(c.rbuf)
	if n > MaxMessageSize {
		return nil, ErrTooLarge
	}
	if len(c.rbuf) < headerSize+int(n) {
		return nil, nil
	}
	body := c.rbuf[headerSize : headerSize+int(n)]
	m := new(Message)
	err := json.Unmarshal(body, m)
	c.rbuf = c.rbuf[headerSize+int(n):]
	if len(c.rbuf) == 0 {
		c.rbuf = nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: decode message: %v", ErrProtocol, err)
	}
	if m.NFD < 0 || m.NFD > MaxFDs {
		return nil, ErrTooManyFDs
	}
	if m.NFD > len(c.fds) {
		return nil, fmt.Errorf("%w: %s message claims %d descriptors, %d arrived", ErrProtocol, m.Type, m.NFD, len(c.fds))
	}
	m.FDs = append([]int(nil), c.fds[:m.NFD]...)
	c.fds = c.fds[m.NFD:]
	return m, nil
}

// fill reads more bytes and descriptors from the socket.
func (c *Conn) fill() error {
	n, oobn, flags, _, err := c.uc.ReadMsgUnix(c.tmp, c.oob)
	if oobn > 0 {
		fds, perr := parseRights(c.oob[:oobn])
		c.fds = append(c.fds, fds...)
		if perr != nil {
			return perr
		}
		if len(c.fds) > MaxFDs {
			return ErrTooManyFDs
		}
	}
	if flags&syscall.MSG_CTRUNC != 0 {
		return fmt.Errorf("%w: ancillary data truncated", ErrProtocol)
	}
	if n > 0 {
		if len(c.rbuf)+n > headerSize+MaxMessageSize {
			return ErrTooLarge
		}
		c.rbuf = append(c.rbuf, c.tmp[:n]...)
	}
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	return nil
}

// parseRights returns the descriptors of SCM_RIGHTS messages in oob, made
// close-on-exec.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	var fds []int
	for i := range msgs {
		rights, err := syscall.ParseUnixRights(&msgs[i])
		if err != nil {
			continue // not SCM_RIGHTS
		}
		for _, fd := range rights {
			syscall.CloseOnExec(fd)
		}
		fds = append(fds, rights...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

// CloseFDs closes the descriptors of a received message that the caller
// does not keep.
func CloseFDs(m *Message) {
	if m != nil {
		closeAll(m.FDs)
		m.FDs = nil
	}
}
