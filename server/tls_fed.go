package server

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// tlsFed is the net.Conn a TLS handshake reads and writes while its
// socket stays in gnet: the handshake runs on a goroutine (crypto/tls
// makes handshake errors sticky, so it cannot run dry on the loop and
// resume), the loop feeds it what gnet reads (push, in OnTraffic) and its
// writes go out through gnet (AsyncWrite). The socket never leaves the
// loop: no duplicate descriptor, no registration with Go's poller and
// none back with gnet, which is what taking the socket off the loop for
// the handshake cost (docs/TLS.md). Once the handshake and the key are
// done, the loop takes the connection back (routed.fedToLoop) with the
// bytes the goroutine did not read.
type tlsFed struct {
	gc            gnet.Conn // for AsyncWrite and Close, which gnet allows off the loop
	local, remote net.Addr  // local: nil (newTLSFed)

	mu     sync.Mutex
	in     []byte    // what the loop pushed and Read has not returned
	err    error     // why no more bytes will come (the loop closed gc, or Close)
	rdl    time.Time // read deadline
	closed bool      // Close was called
	wake   chan struct{}
}

// newTLSFed makes the transport of gc's handshake. Its LocalAddr is nil:
// gnet knows only the listener's address, and the socket's own is looked
// up when the Conn is asked for it (Conn.LocalAddr).
func newTLSFed(gc gnet.Conn) *tlsFed {
	return &tlsFed{gc: gc, remote: gc.RemoteAddr(), wake: make(chan struct{}, 1)}
}

// signal wakes a Read waiting for bytes.
func (f *tlsFed) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// push appends what the loop read for the handshake, on the loop. It
// reports how many bytes wait unread.
func (f *tlsFed) push(b []byte) int {
	f.mu.Lock()
	f.in = append(f.in, b...)
	n := len(f.in)
	f.mu.Unlock()
	f.signal()
	return n
}

// end tells a Read that no more bytes will come, with why, on the loop
// (OnClose).
func (f *tlsFed) end(err error) {
	if err == nil {
		err = io.EOF
	}
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
	f.signal()
}

// take returns the bytes no Read has returned and forgets them, on the
// loop when it takes the connection back.
func (f *tlsFed) take() []byte {
	f.mu.Lock()
	b := f.in
	f.in = nil
	if f.err == nil {
		f.err = net.ErrClosed
	}
	f.mu.Unlock()
	return b
}

// buffered returns what the loop pushed and Read has not returned,
// leaving it there, on the loop while the handshake's goroutine waits.
func (f *tlsFed) buffered() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.in
}

// Read returns what the loop pushed, waiting for it until the read
// deadline.
func (f *tlsFed) Read(p []byte) (int, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return 0, net.ErrClosed
		}
		if len(f.in) > 0 {
			n := copy(p, f.in)
			f.in = f.in[n:]
			if len(f.in) == 0 {
				f.in = nil
			}
			f.mu.Unlock()
			return n, nil
		}
		if f.err != nil {
			err := f.err
			f.mu.Unlock()
			return 0, err
		}
		dl := f.rdl
		f.mu.Unlock()
		var expired <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, errFedTimeout
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			expired = timer.C
		}
		select {
		case <-f.wake:
		case <-expired:
		}
	}
}

// Write sends a copy of p through gnet, which writes it on the loop, in
// order with the other writes of this goroutine.
func (f *tlsFed) Write(p []byte) (int, error) {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	if err := f.gc.AsyncWrite(append([]byte(nil), p...), nil); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the connection: gnet closes the socket after the writes
// queued before (AsyncWrite takes precedence over Close on the loop), and
// OnClose then counts it out.
func (f *tlsFed) Close() error {
	f.mu.Lock()
	already := f.closed
	f.closed = true
	f.mu.Unlock()
	f.signal()
	if already {
		return net.ErrClosed
	}
	_ = f.gc.Close()
	return nil
}

func (f *tlsFed) LocalAddr() net.Addr  { return f.local }
func (f *tlsFed) RemoteAddr() net.Addr { return f.remote }

// SetDeadline sets the read deadline; writes go to gnet's buffer and do
// not wait.
func (f *tlsFed) SetDeadline(t time.Time) error { return f.SetReadDeadline(t) }

func (f *tlsFed) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	f.rdl = t
	f.mu.Unlock()
	f.signal()
	return nil
}

func (f *tlsFed) SetWriteDeadline(time.Time) error { return nil }

// fedTimeout is the error of a Read past its deadline.
type fedTimeout struct{}

func (fedTimeout) Error() string   { return "server: TLS read deadline exceeded" }
func (fedTimeout) Timeout() bool   { return true }
func (fedTimeout) Temporary() bool { return true }

var errFedTimeout net.Error = fedTimeout{}
