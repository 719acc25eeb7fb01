package nodelink

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/xtaci/smux"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/batchconn"
	"github.com/subordinate/subordinate/internal/cluster"
)

// dialLoop keeps the link to peer (a node above this one) up: it dials
// the same worker there (cluster.WorkerAddr), serves the session until
// it ends or the peer goes away (drains, a go-away), and dials again,
// waiting between failures from MinBackoff up to MaxBackoff. A session
// whose peer went away serves its streams on, on its own goroutine. A
// draining node dials no more.
func (l *Links) dialLoop(peer int) {
	defer l.wg.Done()
	addr, err := cluster.WorkerAddr(l.cfg.Members.Nodes[peer], l.cfg.Worker)
	if err != nil { // Resolve checked the list: cannot happen
		l.cfg.Log.Error("cannot link to node", "peer", peer, "err", err)
		return
	}
	wait := l.cfg.MinBackoff
	for l.ctx.Err() == nil && !l.isDraining() {
		s, err := l.dial(peer, addr)
		if err != nil {
			l.cfg.Log.Warn("cannot link to node", "peer", peer, "addr", addr, "err", err)
			select {
			case <-time.After(wait):
			case <-l.ctx.Done():
				return
			}
			wait = min(2*wait, l.cfg.MaxBackoff)
			continue
		}
		wait = l.cfg.MinBackoff
		select {
		case <-l.away[peer]: // a go-away of the link this one replaces
		default:
		}
		if !l.set(peer, s) {
			_ = s.Close()
			return
		}
		l.cfg.Log.Info("node link up", "peer", peer, "addr", addr)
		ended := make(chan struct{})
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer close(ended)
			l.serve(peer, s)
		}()
		select {
		case <-ended:
		case <-l.away[peer]:
		case <-l.ctx.Done():
			return
		}
	}
}

// dial makes the link to peer at addr: TLS as a client, this node's hello
// first, then the peer's.
func (l *Links) dial(peer int, addr string) (*smux.Session, error) {
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.HandshakeTimeout)
	defer cancel()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	cfg := l.cfg.TLS.Clone()
	cfg.ServerName = host
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*tls.Conn)
	deadline, _ := ctx.Deadline()
	_ = tc.SetDeadline(deadline)
	if _, err := tc.Write(frame.AppendNodeHello(nil, &l.hello)); err != nil {
		tc.Close()
		return nil, fmt.Errorf("send the hello: %w", err)
	}
	got, err := readHello(tc)
	if err == nil {
		err = frame.CheckNodeHello(got, l.hello, peer)
	}
	if err != nil {
		tc.Close()
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	s, err := smux.Client(batchconn.New(tc), l.cfg.Smux)
	if err != nil {
		tc.Close()
		return nil, err
	}
	return s, nil
}

// acceptLoop accepts the links of the nodes below this one.
func (l *Links) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.cfg.Listener.Accept()
		if err != nil {
			if l.ctx.Err() == nil && !l.isDraining() {
				l.cfg.Log.Error("cluster listener failed", "err", err)
			}
			return
		}
		l.wg.Add(1)
		go l.accept(c)
	}
}

// accept makes the link a node dialled: TLS as a server, the peer's hello
// first, then this node's, sent whatever the peer's said so that the
// dialling end can log what differs too.
func (l *Links) accept(c net.Conn) {
	defer l.wg.Done()
	tc := tls.Server(c, l.cfg.TLS)
	_ = tc.SetDeadline(time.Now().Add(l.cfg.HandshakeTimeout))
	if err := tc.HandshakeContext(l.ctx); err != nil {
		l.cfg.Log.Warn("node link refused: TLS handshake", "remote", c.RemoteAddr(), "err", err)
		tc.Close()
		return
	}
	got, err := readHello(tc)
	if err != nil {
		l.cfg.Log.Warn("node link refused", "remote", c.RemoteAddr(), "err", err)
		tc.Close()
		return
	}
	_, werr := tc.Write(frame.AppendNodeHello(nil, &l.hello))
	err = frame.CheckNodeHello(got, l.hello, -1)
	if err == nil && got.Index > l.hello.Index {
		err = fmt.Errorf("node %d dialled node %d: the lower index dials", got.Index, l.hello.Index)
	}
	if err == nil {
		err = werr
	}
	if err != nil {
		l.cfg.Log.Warn("node link refused", "remote", c.RemoteAddr(), "err", err)
		tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	s, err := smux.Server(batchconn.New(tc), l.cfg.Smux)
	if err != nil {
		tc.Close()
		return
	}
	peer := int(got.Index)
	if !l.set(peer, s) {
		_ = s.Close()
		return
	}
	l.cfg.Log.Info("node link up", "peer", peer, "remote", c.RemoteAddr())
	l.serve(peer, s)
}

// readHello reads the peer's hello.
func readHello(c net.Conn) (frame.NodeHello, error) {
	var b [frame.NodeHelloSize]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return frame.NodeHello{}, fmt.Errorf("read the hello: %w", err)
	}
	return frame.ParseNodeHello(b[:])
}
