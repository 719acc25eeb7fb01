package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/mesh"
)

// relay takes a connection whose key another shard owns off the loop and
// relays its bytes to the owner over a mesh stream: the path of every
// connection in relay mode, and of one whose early bytes are too many for
// a hand-off message. The bytes read past the preamble travel in the
// stream header.
func (r *routed) relay(gc gnet.Conn, pc *pconn, key []byte, owner int) gnet.Action {
	client, early, err := r.detach(gc)
	if err != nil {
		r.log.Warn("cannot forward a connection", "owner", owner, "err", err)
		return r.refuseConn(gc, "server busy")
	}
	client = withAddrs(client, pc)
	r.hold()
	go func() {
		defer r.release()
		defer r.socks.Add(-1)
		r.forwardConn(client, key, owner, early, nil)
	}()
	return gnet.Close // gnet closes its descriptor; the duplicate keeps the socket
}

// detach takes the socket of a gnet connection out of gnet: a duplicate
// of its descriptor as a net.Conn of Go's runtime poller, and a copy of
// the bytes gnet holds unconsumed. gnet closes its own descriptor when
// the caller returns gnet.Close (or at OnClose); no FIN is sent while the
// duplicate is open.
func (r *routed) detach(gc gnet.Conn) (net.Conn, []byte, error) {
	fd, err := gc.Dup()
	if err != nil {
		return nil, nil, fmt.Errorf("detach: %w", err)
	}
	nc, err := fileConn(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("detach: %w", err)
	}
	r.keepAliveConn(nc)
	r.socks.Add(1) // whoever takes nc counts it out when it closes it
	var rest []byte
	if gc.InboundBuffered() > 0 {
		b, _ := gc.Next(-1)
		rest = append([]byte(nil), b...)
	}
	return nc, rest, nil
}

// fileConn turns a descriptor the runtime owns into a net.Conn.
func fileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "client")
	defer f.Close()
	return net.FileConn(f)
}

// forwardConn opens a stream to owner, sends the stream header, waits for
// the owner to accept the connection and relays client to it until both
// sides are done. If the owner dies before it accepted, the connection
// goes to its successor: the owner never saw more than the header, and
// nothing of it reached the client. It gives up, with -ERR, after
// OwnerWait. key is nil for a direct connection.
func (r *routed) forwardConn(client net.Conn, key []byte, owner int, early []byte, tlsi *TLSInfo) {
	r.forwardTo(client, key, owner, r.self, early, tlsi)
}

// forwardTo is forwardConn to worker owner of node: over the mesh when
// node is this one, over the link to that node otherwise (cluster.go),
// where the owner is this worker's namesake.
func (r *routed) forwardTo(client net.Conn, key []byte, owner, node int, early []byte, tlsi *TLSInfo) {
	hdr := frame.StreamHeader{
		Direct: key == nil,
		Key:    key,
		Client: addrOf(client.RemoteAddr()),
		Local:  addrOf(client.LocalAddr()),
		TLS:    tlsi,
	}
	if hdr.Direct {
		hdr.Shard = uint32(owner)
	}
	rest := early
	if len(rest) > frame.DefaultMaxEarly {
		hdr.Early, rest = rest[:frame.DefaultMaxEarly], rest[frame.DefaultMaxEarly:]
	} else {
		hdr.Early, rest = rest, nil
	}
	b, err := frame.AppendStreamHeader(nil, &hdr)
	if err != nil { // cannot happen: the decoder bounds the key
		r.log.Error("cannot forward a connection", "owner", owner, "err", err)
		r.replyError(client, "internal error")
		return
	}
	deadline := time.Now().Add(r.info.Config.OwnerWait)
	for {
		st, err := r.openAccepted(owner, node, b, rest, deadline)
		if err == nil {
			res := mesh.Relay(client, st, r.writeTimeout)
			if res.Err != nil {
				r.log.Debug("forwarded connection ended", "owner", owner, "node", node, "err", res.Err)
			}
			return
		}
		if time.Now().Before(deadline) {
			if errors.Is(err, mesh.ErrPeerDown) {
				continue // the owner died before it took the connection: its successor will
			}
			if node != r.self {
				// The link went down, or the owner stopped, before it
				// took the connection: the node's next link or the
				// owner's successor will.
				time.Sleep(min(nodeRetry, time.Until(deadline)))
				continue
			}
		}
		reason := fmt.Sprintf("shard %d unavailable", owner)
		if node != r.self {
			reason = fmt.Sprintf("node %d unavailable", node)
		}
		r.log.Warn("owner unavailable", "owner", owner, "node", node, "remote", client.RemoteAddr(), "err", err)
		r.gstats.refused[refOwnerUnavailable].Add(1)
		r.replyError(client, reason)
		return
	}
}

// nodeRetry is the pause between two attempts to give a connection to a
// node that did not take it.
const nodeRetry = 50 * time.Millisecond

// openAccepted opens a stream to worker owner of node (waiting until
// deadline for a link to it), writes the header hdr and the early bytes
// past it, and waits for the owner's StreamAccepted. On the mesh, an
// error wrapping mesh.ErrPeerDown means the link to the owner is gone (or
// not there in time).
func (r *routed) openAccepted(owner, node int, hdr, rest []byte, deadline time.Time) (net.Conn, error) {
	var st net.Conn
	var err error
	if node != r.self {
		st, err = r.openNode(node, deadline)
	} else {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		st, err = r.mesh.Open(ctx, owner)
		cancel()
	}
	if err != nil {
		return nil, err
	}
	_, err = st.Write(hdr)
	if err == nil && len(rest) > 0 {
		_, err = st.Write(rest)
	}
	if err == nil {
		// A live owner answers at once; the wait for its answer is
		// bounded like a write on the mesh, not by OwnerWait (which is
		// how long a connection waits for an owner that is down).
		_ = st.SetReadDeadline(time.Now().Add(r.writeTimeout))
		var ack [1]byte
		if _, err = io.ReadFull(st, ack[:]); err == nil && ack[0] != frame.StreamAccepted {
			err = fmt.Errorf("the owner answered %#x, not accepted", ack[0])
		}
		_ = st.SetReadDeadline(time.Time{})
	}
	if err != nil {
		st.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("the owner refused the stream: %w", err)
		}
		return nil, fmt.Errorf("forward a connection: %w", err)
	}
	return st, nil
}

// replyError refuses a client off the loop, as refuseConn does on it
// (its TLS, if any, terminated), then closes.
func (r *routed) replyError(c net.Conn, reason string) {
	_ = c.SetWriteDeadline(time.Now().Add(r.writeTimeout))
	_, _ = c.Write(appendRefusal(nil, r.form(false), reason, 0))
	_ = c.Close()
}

func addrOf(a net.Addr) frame.Addr {
	if a == nil {
		return frame.Addr{}
	}
	return frame.Addr{Net: a.Network(), Addr: a.String()}
}

// onStream serves a connection another worker relays here: it reads the
// stream header, then hands the stream to the handler as a Conn. It runs
// on its own goroutine (mesh.StreamHandler).
func (r *routed) onStream(peer int, st *mesh.Stream) {
	select {
	case <-r.shard.running:
	case <-r.stopped:
		st.Close()
		return
	}
	hdr, err := frame.ReadStreamHeader(st, frame.HeaderLimits{MaxKey: r.info.Config.MaxKey})
	if err != nil {
		r.log.Warn("bad stream header", "peer", peer, "err", err)
		st.Close()
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	key := hdr.Key
	if hdr.Direct || len(key) == 0 {
		key = nil
	}
	if !r.owns(key, hdr.Shard) {
		r.log.Error("stream for another shard", "peer", peer, "key", printable(hdr.Key), "direct", hdr.Direct)
		st.Close()
		return
	}
	if r.remote(key) {
		r.streamToNode(st, hdr)
		return
	}
	early := hdr.Early
	if err := r.shard.run(func() {
		c := r.newConn(key, hdr.Direct, peer)
		c.fwd, c.relayed, c.remote, c.local, c.tls = true, true, hdr.Client, hdr.Local, hdr.TLS
		r.openStream(c, st, early, true)
	}); err != nil {
		st.Close()
	}
}

// openStream opens a Conn backed by nc (a mesh stream or a TLS
// connection), on the loop; early are bytes already read from it. For a
// relayed stream (accept), the owner's StreamAccepted goes out first,
// before anything the handler writes.
func (r *routed) openStream(c *Conn, nc net.Conn, early []byte, accept bool) {
	c.st = newStream(c, nc)
	c.st.in = append(c.st.in, early...)
	r.offLoop[c] = struct{}{}
	if r.refuse || r.stopping {
		c.st.abort()
		r.drop(c)
		return
	}
	if accept {
		c.st.accept()
	}
	r.open(c)
}
