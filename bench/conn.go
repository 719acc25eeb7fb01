package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"
)

// past is a deadline that has already expired: setting it unblocks every
// pending Read and Write of a connection.
var past = time.Unix(1, 0)

// dial opens a connection for key index i (TLS if configured), with
// SO_LINGER 0 when Linger0 is set. The key matters only when the
// connection presents it in its address or its TLS server name
// (keyPlan.atDial). On failure it returns the kind of step that failed.
func (w *worker) dial(key int) (net.Conn, int, error) {
	r := w.r
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Timeout)
	defer cancel()
	c, err := w.dialerFor(key).DialContext(ctx, r.cfg.network(), r.cfg.Addr)
	if err != nil {
		return nil, kConnect, err
	}
	if r.cfg.Linger0 {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	}
	if r.tls == nil {
		return c, 0, nil
	}
	tc := tls.Client(c, w.tlsFor(key))
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, kTLS, err
	}
	if r.measuring.Load() {
		w.tlsHandshakes.Add(1)
		if tc.ConnectionState().DidResume {
			w.tlsResumed.Add(1)
		}
	}
	return tc, 0, nil
}

// session dials one long-lived connection and runs fn on it, with its
// key index, until the run stops or fn fails; it reports whether it ended
// without an error. The key is drawn once the connection is up, unless
// the dial needs it.
func (w *worker) session(fn func(c net.Conn, key int) bool) bool {
	key := -1
	if w.r.plan.atDial() {
		key = w.keys.next()
	}
	c, kind, err := w.dial(key)
	if err != nil {
		w.failErr(classify(err, kind), err)
		return false
	}
	defer c.Close()
	stop := context.AfterFunc(w.r.ctx, func() { _ = c.SetDeadline(past) })
	defer stop()
	if key < 0 {
		key = w.keys.next()
	}
	return fn(c, key)
}

// readEcho reads one reply into w.resp and checks it against want. first
// says whether it is the first reply on the connection, the one where a
// preamble error shows. It returns the error kind, or -1. It checks the
// bytes as they come, so a reply that is not the echo (a server that does
// not echo and then waits) is a mismatch at once, not after Timeout.
func (w *worker) readEcho(c net.Conn, want []byte, first bool) int {
	refusal := w.r.plan.refusal
	got := w.resp[:len(want)]
	n, checked := 0, 0
	var err error
	for n < len(got) {
		var m int
		m, err = c.Read(got[n:])
		n += m
		if err != nil || (first && isRefusal(got[:n], refusal)) {
			break
		}
		if first && n < len(refusal) && refusal[:n] == string(got[:n]) {
			continue // perhaps the start of "-ERR" (or "HTTP/"): read on
		}
		if !bytes.Equal(got[checked:n], want[checked:n]) {
			break
		}
		checked = n
	}
	if first && isRefusal(got[:n], refusal) {
		w.note(kPreamble, "the server refused the connection: "+errLine(c, got[:n]))
		return kPreamble
	}
	if checked < n && !bytes.Equal(got[checked:n], want[checked:n]) { // got[:checked] is the echo
		// What came back is not the echo, whether or not the run
		// stopped the read: the server does not echo.
		w.note(kMismatch, mismatchReason(got[:n], len(want)))
		return kMismatch
	}
	if err != nil && n < len(got) {
		k := classify(err, kRead)
		if k == kShortRead && first {
			w.note(k, fmt.Sprintf("the server closed the connection after %d of %d bytes of the first echo", n, len(want)))
		} else {
			w.note(k, err.Error())
		}
		return k
	}
	return -1
}

// errPrefix starts an error reply.
const errPrefix = "-ERR"

// isRefusal reports whether b starts with prefix: like a "-ERR <reason>"
// reply, or an HTTP response where the echo of a request head was due.
func isRefusal(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// readReply reads the echo of req. On the first reply of a connection it
// first reads the echo of the opening's echoed part (an HTTP request
// head), where a refusal shows instead.
func (w *worker) readReply(c net.Conn, echoed, req []byte, first bool) int {
	if first && len(echoed) > 0 {
		if k := w.readEcho(c, echoed, true); k >= 0 {
			return k
		}
		first = false
	}
	return w.readEcho(c, req, first)
}

// pingpong sends one request at a time on c and waits for its echo.
func (w *worker) pingpong(c net.Conn, key int) bool {
	r := w.r
	out, echoed := w.appendOpening(w.wbuf[:0], key)
	first := true
	for r.ctx.Err() == nil {
		req := w.payload()
		if first {
			out = append(out, req...)
		} else {
			out = req
		}
		t0 := time.Now()
		_ = c.SetDeadline(t0.Add(r.cfg.Timeout))
		if _, err := c.Write(out); err != nil {
			w.failErr(classify(err, kWrite), err)
			return false
		}
		if first {
			w.wbuf = out[:0] // keep the grown buffer for the next connection
		}
		if k := w.readReply(c, echoed, req, first); k >= 0 {
			w.fail(k)
			return false
		}
		first = false
		w.done(time.Since(t0))
	}
	return true
}

// inflight is one pipelined request: when it was written and which
// payload it carried.
type inflight struct {
	at  time.Time
	req []byte
}

// pipeline keeps Depth requests in flight on c: a writer goroutine sends
// as many as there are free slots in one write, this goroutine reads the
// echoes in order and frees the slots. Two goroutines, so that a server
// that pushes back on writes cannot deadlock the client.
func (w *worker) pipeline(c net.Conn, key int) bool {
	r := w.r
	open, echoed := w.appendOpening(w.wbuf[:0], key)
	depth := r.cfg.Depth
	slots := make(chan struct{}, depth)
	for range depth {
		slots <- struct{}{}
	}
	sent := make(chan inflight, depth)
	connDone := make(chan struct{})
	var once sync.Once
	failed := false
	fail := func(k int) { // first failure wins; it ends both sides
		once.Do(func() {
			if k >= 0 {
				w.fail(k)
				failed = true
			}
			close(connDone)
			_ = c.SetDeadline(past)
		})
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := open
		for {
			select {
			case <-slots:
			case <-connDone:
				return
			case <-r.ctx.Done():
				fail(-1)
				return
			}
			n := 1
		more:
			for n < depth {
				select {
				case <-slots:
					n++
				default:
					break more
				}
			}
			now := time.Now()
			for range n {
				req := w.payload()
				buf = append(buf, req...)
				sent <- inflight{at: now, req: req} // never blocks: n slots were free
			}
			_ = c.SetWriteDeadline(now.Add(r.cfg.Timeout))
			_, err := c.Write(buf)
			buf = buf[:0]
			if err != nil {
				w.note(classify(err, kWrite), err.Error())
				fail(classify(err, kWrite))
				return
			}
		}
	}()

	first := true
	for {
		var it inflight
		select {
		case it = <-sent:
			_ = c.SetReadDeadline(time.Now().Add(r.cfg.Timeout))
			if k := w.readReply(c, echoed, it.req, first); k >= 0 {
				fail(k)
				break
			}
			first = false
			w.done(time.Since(it.at))
			slots <- struct{}{}
			continue
		case <-connDone:
		case <-r.ctx.Done():
			fail(-1)
		}
		wg.Wait()
		return !failed
	}
}

// connectOnce runs one request on a connection of its own: dial,
// preamble and request, echo, close. Its latency includes the dial.
func (w *worker) connectOnce() bool {
	r := w.r
	key := w.keys.next()
	t0 := time.Now()
	c, kind, err := w.dial(key)
	if err != nil {
		w.failErr(classify(err, kind), err)
		return false
	}
	defer c.Close()
	stop := context.AfterFunc(r.ctx, func() { _ = c.SetDeadline(past) })
	defer stop()
	_ = c.SetDeadline(t0.Add(r.cfg.Timeout))
	req := w.payload()
	out, echoed := w.appendOpening(w.wbuf[:0], key)
	out = append(out, req...)
	w.wbuf = out[:0]
	if _, err := c.Write(out); err != nil {
		w.failErr(classify(err, kWrite), err)
		return false
	}
	if k := w.readReply(c, echoed, req, true); k >= 0 {
		w.fail(k)
		return false
	}
	w.done(time.Since(t0))
	return true
}
