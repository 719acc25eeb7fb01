package mesh

import (
	"bufio"
	"net"
	"sync"
	"sync/atomic"
)

// link is a peer link as its smux session sees it: reads go through an
// optional buffered reader, and the first read or write error marks the
// link dead, so that a stream reader can tell the link's EOF (the peer is
// gone) from a stream's EOF (the peer closed its write side).
type link struct {
	conn     net.Conn
	r        *bufio.Reader // nil: read conn directly
	dead     atomic.Bool
	writeErr atomic.Pointer[error] // the first write error, if any
	once     sync.Once
}

func newLink(conn net.Conn, bufSize int) *link {
	l := &link{conn: conn}
	if bufSize > 0 {
		l.r = bufio.NewReaderSize(conn, bufSize)
	}
	return l
}

// Read is called by the session's receive loop only.
func (l *link) Read(p []byte) (int, error) {
	var n int
	var err error
	if l.r != nil {
		n, err = l.r.Read(p)
	} else {
		n, err = l.conn.Read(p)
	}
	if err != nil {
		l.dead.Store(true)
	}
	return n, err
}

// Write is called by the session's send loop only. A write error closes
// the conn, so that the receive loop fails too and the Mesh notices.
func (l *link) Write(p []byte) (int, error) {
	n, err := l.conn.Write(p)
	if err != nil {
		l.writeErr.CompareAndSwap(nil, &err)
		l.dead.Store(true)
		_ = l.Close()
	}
	return n, err
}

// Close closes the conn once.
func (l *link) Close() error {
	var err error
	l.once.Do(func() { err = l.conn.Close() })
	return err
}

func (l *link) LocalAddr() net.Addr  { return l.conn.LocalAddr() }
func (l *link) RemoteAddr() net.Addr { return l.conn.RemoteAddr() }
