package server

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/subordinate/subordinate/frame"
)

// Sizes of the stream backend.
const (
	// streamChunk is the most a stream reader reads at once.
	streamChunk = 16 << 10
	// streamSmall is the buffer a stream reader starts with: an idle
	// connection, blocked in Read, holds only this much.
	streamSmall = 2 << 10
	// streamCredit is how many unconsumed bytes a stream Conn may hold
	// before its reader stops reading: the smux window (or the TCP
	// window) then pushes back on the sender.
	streamCredit = 64 << 10
)

// stream is the backend of a Conn whose bytes come from a net.Conn that
// Go's runtime poller drives: a smux stream from the accepting worker, or
// a local socket (plain or TLS) taken off gnet after the client's EOF. A reader goroutine reads a chunk, hands it to the loop and waits
// until the handler has consumed enough before it reads more (real
// backpressure, unlike gnet); a writer goroutine, started when there is
// something to send, drains the bounded outbound buffer.
type stream struct {
	c  *Conn
	nc net.Conn

	// Loop only.
	in      []byte
	head    int
	started bool // the reader goroutine runs
	waiting bool // the reader waits for credit
	ack     chan struct{}
	done    chan struct{} // closed when the Conn is finished
	endOnce sync.Once

	mu      sync.Mutex
	out     []byte
	spare   []byte
	writing bool
	idle    chan struct{} // closed when the writer goroutine exits (flush)
	control []byte        // queued bytes of the runtime's that even abort sends (accept)
	finish  finishKind
	failed  bool
}

type finishKind uint8

const (
	finishNone finishKind = iota
	finishCloseWrite
	finishClose
)

func newStream(c *Conn, nc net.Conn) *stream {
	return &stream{c: c, nc: nc, ack: make(chan struct{}, 1), done: make(chan struct{})}
}

// buffered, peek and discard serve the Conn's read methods, on the loop.
func (s *stream) buffered() int { return len(s.in) - s.head }

func (s *stream) peek(n int) ([]byte, error) {
	b := s.in[s.head:]
	if n > len(b) {
		return nil, io.ErrShortBuffer
	}
	if n > 0 {
		b = b[:n]
	}
	return b, nil
}

func (s *stream) discard(n int) int {
	if n > s.buffered() {
		n = s.buffered()
	}
	s.head += n
	if s.head == len(s.in) {
		s.in, s.head = s.in[:0], 0
	}
	if s.waiting && s.buffered() < streamCredit {
		s.waiting = false
		s.resume()
	}
	return n
}

// deliver appends bytes read from the stream and gives them to the
// handler, on the loop.
func (s *stream) deliver(p []byte) {
	c := s.c
	if c.closing || c.closed {
		return
	}
	c.active = c.rt.clock
	if s.head > 0 && s.head >= len(s.in)/2 {
		s.in = append(s.in[:0], s.in[s.head:]...)
		s.head = 0
	}
	s.in = append(s.in, p...)
	c.counted(len(p), 0)
	s.dataReady()
}

// dataReady gives what is buffered to the handler, then lets the reader
// read more if the handler consumed enough.
func (s *stream) dataReady() {
	c := s.c
	if s.buffered() > 0 {
		c.rt.call(c, "OnData", Handler.OnData)
		if c.closing || c.closed {
			return
		}
	}
	if s.buffered() < streamCredit {
		s.resume()
	} else {
		s.waiting = true
	}
}

// resume lets the reader read more (starting it the first time).
func (s *stream) resume() {
	if !s.started {
		s.started = true
		go s.readLoop()
		return
	}
	select {
	case s.ack <- struct{}{}:
	default:
	}
}

// readLoop reads the stream until it ends or the Conn is finished.
func (s *stream) readLoop() {
	buf := make([]byte, streamSmall)
	for {
		n, err := s.nc.Read(buf)
		if n > 0 {
			p := buf[:n]
			if s.c.rt.shard.run(func() { s.deliver(p) }) != nil {
				return
			}
			select {
			case <-s.ack:
			case <-s.done:
				return
			}
			if n == len(buf) && n < streamChunk {
				buf = make([]byte, streamChunk) // bytes stream: read more at once
			}
		}
		if err != nil {
			_ = s.c.rt.shard.run(func() { s.readEnd(err) })
			return
		}
	}
}

// readEnd handles the end of the client's bytes, on the loop.
func (s *stream) readEnd(err error) {
	c := s.c
	if c.closing || c.closed {
		return
	}
	if errors.Is(err, io.EOF) {
		c.eof = true
		c.rt.call(c, "OnEOF", Handler.OnEOF)
		return
	}
	c.abort(err)
}

// write queues p, from the handler, for the writer goroutine.
func (s *stream) write(p []byte) (int, error) {
	n, err := s.enqueue(p)
	s.c.counted(0, n) // write runs on the loop
	return n, err
}

// enqueue queues p for the writer goroutine.
func (s *stream) enqueue(p []byte) (int, error) {
	s.mu.Lock()
	if s.finish != finishNone || s.failed {
		s.mu.Unlock()
		return 0, ErrConnClosed
	}
	if len(s.out)+len(p) > s.c.rt.limit {
		s.mu.Unlock()
		s.c.abort(ErrSlowReader)
		return 0, ErrSlowReader
	}
	s.out = append(s.out, p...)
	if !s.writing {
		s.writing = true
		go s.writeLoop()
	}
	s.mu.Unlock()
	return len(p), nil
}

// writeLoop sends what is queued, then carries out a pending CloseWrite
// or Close, and exits.
func (s *stream) writeLoop() {
	for {
		s.mu.Lock()
		if len(s.out) == 0 {
			s.writing = false
			s.wakeFlush()
			f := s.finish
			s.mu.Unlock()
			s.finishNow(f)
			return
		}
		b := s.out
		s.out, s.spare, s.control = s.spare[:0], nil, nil
		s.mu.Unlock()

		_ = s.nc.SetWriteDeadline(time.Now().Add(s.c.rt.writeTimeout))
		_, err := s.nc.Write(b)

		s.mu.Lock()
		s.spare = b[:0]
		if err != nil {
			s.failed, s.writing, s.out = true, false, nil
			s.wakeFlush()
			s.mu.Unlock()
			_ = s.nc.Close()
			_ = s.c.rt.shard.run(func() { s.c.abort(err) })
			return
		}
		s.mu.Unlock()
	}
}

// flush waits until the writer goroutine has sent what was queued (or
// failed): a hijacker writes to the net.Conn itself, after it.
func (s *stream) flush() {
	s.mu.Lock()
	if !s.writing {
		s.mu.Unlock()
		return
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	ch := s.idle
	s.mu.Unlock()
	<-ch
}

// wakeFlush wakes the flush waiting for the writer to exit; s.mu held.
func (s *stream) wakeFlush() {
	if s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

func (s *stream) finishNow(f finishKind) {
	switch f {
	case finishCloseWrite:
		if cw, ok := s.nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	case finishClose:
		_ = s.nc.Close()
	}
}

// closeWrite half-closes once the queue is sent.
func (s *stream) closeWrite() { s.setFinish(finishCloseWrite) }

// close closes once the queue is sent.
func (s *stream) close() {
	s.setFinish(finishClose)
	s.end()
}

// end tells the reader the Conn is finished.
func (s *stream) end() { s.endOnce.Do(func() { close(s.done) }) }

func (s *stream) setFinish(f finishKind) {
	s.mu.Lock()
	if s.finish == finishClose {
		s.mu.Unlock()
		return
	}
	s.finish = f
	idle := !s.writing
	s.mu.Unlock()
	if idle {
		s.finishNow(f)
	}
}

// abort closes at once, dropping what was not sent.
func (s *stream) abort() {
	s.mu.Lock()
	if len(s.control) > 0 && !s.failed {
		// The owner's StreamAccepted still goes, then the close: the
		// connection was taken, and ends here.
		s.out, s.finish = s.control, finishClose
		if !s.writing {
			s.writing = true
			go s.writeLoop()
		}
		s.mu.Unlock()
		s.end()
		return
	}
	s.out, s.finish = nil, finishClose
	s.mu.Unlock()
	_ = s.nc.Close()
	s.end()
}

// accept queues the owner's StreamAccepted, first on a relayed stream.
func (s *stream) accept() {
	s.mu.Lock()
	s.control = []byte{frame.StreamAccepted}
	s.mu.Unlock()
	_, _ = s.enqueue(s.control)
}
