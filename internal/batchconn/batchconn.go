package batchconn

import (
	"net"
	"sync"
)

// MaxBatch bounds the bytes a Conn holds for its flusher: past it,
// Write waits (back-pressure on the writer).
const MaxBatch = 256 << 10

// Conn gathers the frames a smux session writes one by one into
// batches, each one system call (and, over TLS, one run of records):
// under load, the frames of many streams go out together. Write hands
// its bytes to a flusher goroutine and returns; a write error is returned
// by the next Write (smux then ends the session), and Close ends the
// flusher.
type Conn struct {
	net.Conn

	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte
	spare   []byte
	err     error
	closed  bool
	done    chan struct{}
}

// New returns c with its writes gathered into batches.
func New(c net.Conn) *Conn {
	b := &Conn{Conn: c, done: make(chan struct{})}
	b.cond = sync.NewCond(&b.mu)
	go b.flush()
	return b
}

// Write queues p for the flusher.
func (b *Conn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && !b.closed && len(b.pending) >= MaxBatch {
		b.cond.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.closed {
		return 0, net.ErrClosed
	}
	wake := len(b.pending) == 0
	b.pending = append(b.pending, p...)
	if wake {
		b.cond.Broadcast()
	}
	return len(p), nil
}

// flush writes what Write queued, a batch at a time, until Close or an
// error.
func (b *Conn) flush() {
	defer close(b.done)
	b.mu.Lock()
	for {
		for len(b.pending) == 0 && !b.closed {
			b.cond.Wait()
		}
		if len(b.pending) == 0 { // closed, nothing left
			b.mu.Unlock()
			return
		}
		batch := b.pending
		b.pending, b.spare = b.spare[:0], nil
		b.cond.Broadcast() // writers waiting for room
		b.mu.Unlock()
		_, err := b.Conn.Write(batch)
		b.mu.Lock()
		b.spare = batch[:0]
		if err != nil {
			b.err = err
			b.cond.Broadcast()
			b.mu.Unlock()
			b.Conn.Close()
			return
		}
	}
}

// Close closes the connection at once (what is queued is dropped, as
// smux's own Close drops its queue) and ends the flusher.
func (b *Conn) Close() error {
	b.mu.Lock()
	b.closed = true
	b.pending = nil
	b.cond.Broadcast()
	b.mu.Unlock()
	return b.Conn.Close()
}
