package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/mesh"
	"github.com/subordinate/subordinate/shard"
)

// forward takes a connection whose key another shard owns off the loop
// and relays it to the owner. The bytes read past the preamble travel in
// the stream header.
func (r *routed) forward(gc gnet.Conn, pc *pconn, key []byte, direct bool, owner int) gnet.Action {
	fd, err := gc.Dup()
	if err != nil {
		r.log.Error("cannot forward a connection", "err", err)
		return r.refuseConn(gc, "internal error")
	}
	var early []byte
	if gc.InboundBuffered() > 0 {
		b, _ := gc.Next(-1)
		early = append([]byte(nil), b...)
	}
	pc.detached = true
	r.forwarding.Add(1)
	go r.relay(fd, key, direct, owner, early)
	return gnet.Close // gnet closes its descriptor; the duplicate keeps the socket
}

// relay runs on its own goroutine for the life of a forwarded connection.
func (r *routed) relay(fd int, key []byte, direct bool, owner int, early []byte) {
	defer func() {
		if r.forwarding.Add(-1) == 0 {
			_ = r.shard.Run(r.maybeDrained)
		}
	}()
	client, err := fileConn(fd)
	if err != nil {
		r.log.Error("cannot forward a connection", "err", err)
		return
	}
	r.forwardConn(client, key, direct, owner, early, nil)
}

// fileConn turns a descriptor the runtime owns into a net.Conn.
func fileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "client")
	defer f.Close()
	return net.FileConn(f)
}

// forwardConn opens a stream to owner, sends the stream header and relays
// client to it until both sides are done.
func (r *routed) forwardConn(client net.Conn, key []byte, direct bool, owner int, early []byte, tlsi *TLSInfo) {
	ctx, cancel := context.WithTimeout(context.Background(), r.info.Config.OwnerWait)
	st, err := r.mesh.Open(ctx, owner)
	cancel()
	if err != nil {
		r.log.Warn("owner unavailable", "owner", owner, "remote", client.RemoteAddr(), "err", err)
		r.replyError(client, fmt.Sprintf("shard %d unavailable", owner))
		return
	}
	hdr := frame.StreamHeader{
		Direct: direct,
		Shard:  uint32(owner),
		Key:    key,
		Client: addrOf(client.RemoteAddr()),
		Local:  addrOf(client.LocalAddr()),
		TLS:    tlsi,
	}
	rest := early
	if len(rest) > frame.DefaultMaxEarly {
		hdr.Early, rest = rest[:frame.DefaultMaxEarly], rest[frame.DefaultMaxEarly:]
	} else {
		hdr.Early, rest = rest, nil
	}
	b, err := frame.AppendStreamHeader(nil, &hdr)
	if err == nil {
		_, err = st.Write(b)
	}
	if err == nil && len(rest) > 0 {
		_, err = st.Write(rest)
	}
	if err != nil {
		r.log.Warn("cannot forward a connection", "owner", owner, "err", err)
		st.Close()
		r.replyError(client, fmt.Sprintf("shard %d unavailable", owner))
		return
	}
	res := mesh.Relay(client, st, r.writeTimeout)
	if res.Err != nil {
		r.log.Debug("forwarded connection ended", "owner", owner, "err", res.Err)
	}
}

// replyError writes one -ERR line to a client off the loop, then closes.
func (r *routed) replyError(c net.Conn, reason string) {
	_ = c.SetWriteDeadline(time.Now().Add(r.writeTimeout))
	_, _ = c.Write(frame.AppendError(nil, reason))
	_ = c.Close()
}

func addrOf(a net.Addr) frame.Addr {
	if a == nil {
		return frame.Addr{}
	}
	return frame.Addr{Net: a.Network(), Addr: a.String()}
}

// onStream serves a connection another worker forwarded here: it reads
// the stream header, then hands the stream to the handler as a Conn. It
// runs on its own goroutine (mesh.StreamHandler).
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
	if (hdr.Direct && int(hdr.Shard) != r.info.Index) || (!hdr.Direct && shard.Owner(hdr.Key, r.info.Count) != r.info.Index) {
		r.log.Error("stream for another shard", "peer", peer, "key", printable(hdr.Key), "direct", hdr.Direct)
		st.Close()
		return
	}
	c := &Conn{rt: r, key: hdr.Key, direct: hdr.Direct, fwd: true, via: peer, remote: hdr.Client, local: hdr.Local, tls: hdr.TLS}
	if len(hdr.Key) == 0 {
		c.key = nil
	}
	c.st = newStream(c, st)
	early := hdr.Early
	if err := r.shard.Run(func() { r.openStream(c, early) }); err != nil {
		st.Close()
	}
}

// openStream opens a stream-backed Conn on the loop.
func (r *routed) openStream(c *Conn, early []byte) {
	if r.refuse {
		c.st.abort()
		return
	}
	r.active++
	if len(early) > 0 {
		c.st.in = append(c.st.in, early...) // Hijack takes them
	}
	c.opening = true
	r.handler.OnOpen(c)
	c.opening = false
	if c.hijacked {
		r.active--
		return
	}
	if c.closing {
		return
	}
	c.st.dataReady()
}
