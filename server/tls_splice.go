package server

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/ctl"
	"github.com/subordinate/subordinate/internal/gnetx"
	"github.com/subordinate/subordinate/internal/handoff"
)

// spliceConn forwards a TLS connection this worker terminated to the
// worker that owns its key without the mesh: the TLS state cannot move,
// so this worker keeps the tls.Conn and relays its plaintext through a
// Unix socketpair, and hands the other end of the pair to the owner over
// their hand-off link (a stream hand-off, docs/PROTOCOL.md 6a). The pair
// starts with the stream header a mesh relay would send (the client's
// addresses, the TLS summary, the early bytes). The owner adopts its end
// into its event loop as it does a handed-off socket.
//
// This worker serves both sides on its loop too: the client's TLS
// connection comes back to the loop (as a local one does, fedToLoop), the
// loop adopts its end of the pair, and each side is a Conn of the loop
// whose handler is a splice: what one side reads, the other writes. No
// goroutine and no hand-off per read or write on either worker. The
// limits of a local Conn bound the buffers: each side holds at most
// Config.ConnBufferLimit bytes its peer has not taken.
//
// The hand-off waits for the owner like any other (OwnerWait, sent again
// to a successor if the owner dies first); if it gives up, its -ERR line
// goes into the pair and reaches the client through the splice,
// encrypted. It is called on the handshake's goroutine, which it leaves
// at once: the rest runs on the loop.
func (r *routed) spliceConn(ref fedRef, tc *tls.Conn, tr *tlsTransport, key []byte, owner int, early []byte, info *TLSInfo) {
	err := r.shard.run(func() {
		if !ref.live() {
			return // the client went away
		}
		tr.pending = ref.f.take()
		ref.pc.fed = nil
		tr.onLoop(ref.gc)
		if r.refuse || r.stopping {
			_ = tc.CloseWrite()
			_ = ref.gc.Close()
			return
		}
		if tr.local == nil { // not declared by a PROXY header
			tr.local, _ = r.eng.LocalAddr(ref.gc)
		}
		if err := r.splice(ref, tc, tr, key, owner, early, info); err != nil {
			r.log.Warn("cannot forward a TLS connection", "owner", owner, "err", err)
			r.gstats.refused[refBusy].Add(1)
			r.logRefusal(tr.remote, "server busy")
			_, _ = tc.Write(appendRefusal(nil, r.form(false), "server busy", 0))
			_ = tc.CloseWrite()
			_ = ref.gc.Close()
		}
	})
	if err != nil { // the loop has stopped: gnet closes the client's socket
		_ = ref.f.Close()
	}
}

// splice joins, on the loop, the client's TLS connection (back on the
// loop, with its transport on gnet) to this worker's end of a new
// socketpair, which the loop adopts, and hands the other end to the
// owner, after the stream header.
func (r *routed) splice(ref fedRef, tc *tls.Conn, tr *tlsTransport, key []byte, owner int, early []byte, info *TLSInfo) error {
	hdr := frame.StreamHeader{
		Direct: key == nil,
		Key:    key,
		Client: addrOf(tr.remote),
		Local:  addrOf(tr.local),
		TLS:    info,
	}
	m := frame.Handoff{Key: key, Stream: true}
	if hdr.Direct {
		hdr.Shard, m.Direct, m.Shard = uint32(owner), true, uint32(owner)
	}
	rest := early
	if len(rest) > frame.DefaultMaxEarly {
		hdr.Early, rest = rest[:frame.DefaultMaxEarly], rest[frame.DefaultMaxEarly:]
	} else {
		hdr.Early, rest = rest, nil
	}
	head, err := frame.AppendStreamHeader(nil, &hdr)
	if err != nil {
		return err
	}
	msg, err := frame.AppendHandoff(nil, &m)
	if err != nil {
		return err
	}
	mine, theirs, err := splicePair()
	if err != nil {
		return err
	}
	s, err := gnetx.Inspect(mine)
	if err != nil {
		unix.Close(mine)
		unix.Close(theirs)
		return err
	}
	end := &spliceEnd{key: key}
	if err := r.eng.Adopt(s, end); err != nil || end.c == nil {
		unix.Close(theirs) // gnet closed mine
		if err == nil {
			err = errors.New("its socketpair was refused")
		}
		return err
	}
	// The header first: the owner reads it before it opens its end. A
	// fresh pair's buffer takes it and the early bytes at once.
	_, _ = end.c.Write(append(head, rest...))
	c := &Conn{rt: r, key: key, direct: key == nil, via: r.info.Index, h: spliceHandler{}, ctx: end.c}
	c.gc, c.remote, c.local, c.tls = ref.gc, tr.remote, tr.local, info
	c.tl = &tlsLoop{tc: tc, tr: tr}
	tr.wrote = c.unsent.wrote
	end.c.ctx = c
	r.hold() // the Conn, until closed
	ref.pc.conn = c
	r.handOffPair(theirs, msg, owner)
	if r.openLocal(ref.pc, c) == gnet.Close {
		_ = ref.gc.Close()
	}
	return nil
}

// handOffPair hands the owner's end of a splice's pair to the owner, on
// the loop if the link takes it now, or on a goroutine that waits for it
// (handOffLater). fd is the caller's no longer.
func (r *routed) handOffPair(fd int, msg []byte, owner int) {
	if l := r.links.Get(owner); l != nil {
		err := l.TrySend(msg, fd)
		if err == nil {
			unix.Close(fd) // the owner holds its end now
			return
		}
		if errors.Is(err, handoff.ErrPeerGone) {
			r.links.Down(owner, l)
		}
	}
	r.hold()
	r.socks.Add(1) // fd, until handOffLater closes it
	go r.handOffLater(fd, msg, owner, r.form(false))
}

// splicePair makes the socketpair of a splice, both ends raw
// non-blocking descriptors, close-on-exec on every system (internal/ctl
// makes the pair).
func splicePair() (mine, theirs int, err error) {
	a, b, err := ctl.Socketpair()
	if err != nil {
		return -1, -1, err
	}
	defer a.Close()
	defer b.Close()
	if mine, err = unix.FcntlInt(a.Fd(), unix.F_DUPFD_CLOEXEC, 0); err != nil {
		return -1, -1, fmt.Errorf("socketpair: %w", err)
	}
	if theirs, err = unix.FcntlInt(b.Fd(), unix.F_DUPFD_CLOEXEC, 0); err != nil {
		unix.Close(mine)
		return -1, -1, fmt.Errorf("socketpair: %w", err)
	}
	if err = unix.SetNonblock(mine, true); err == nil {
		err = unix.SetNonblock(theirs, true)
	}
	if err != nil {
		unix.Close(mine)
		unix.Close(theirs)
		return -1, -1, fmt.Errorf("socketpair: %w", err)
	}
	return mine, theirs, nil
}

// spliceEnd is this worker's end of a spliced TLS connection's pair on
// its way into the loop (gnetx.Adopt): OnOpen makes its Conn (c).
type spliceEnd struct {
	key []byte
	c   *Conn
}

// openSpliceEnd opens the Conn of this worker's end of a splice's pair, in
// the OnOpen that adopting it runs (splice, on the loop). Its peer, the
// client's Conn, is set by splice right after.
func (r *routed) openSpliceEnd(gc gnet.Conn, e *spliceEnd) ([]byte, gnet.Action) {
	pc := r.pool.Get().(*pconn)
	pc.gen++
	gc.SetContext(pc)
	r.hold()       // the gnet connection, until OnClose
	r.socks.Add(1) // until OnClose
	c := &Conn{rt: r, key: e.key, direct: e.key == nil, via: r.info.Index, h: spliceHandler{}}
	c.gc, c.remote = gc, gc.RemoteAddr()
	r.hold() // the Conn, until closed
	pc.conn = c
	e.c = c
	return nil, r.openLocal(pc, c)
}

// spliceHandler is the Handler of both sides of a forwarded TLS connection on
// the worker that accepted it: the client's TLS Conn and this worker's
// end of the pair to the owner. Each side's Context is the other side.
// What one side reads the other writes; an EOF is passed on as a
// half-close, and the connection closes when both directions have ended
// or either side closes.
type spliceHandler struct{}

// OnOpen does nothing: the pair's side opens before the client's.
func (spliceHandler) OnOpen(*Conn) {}

// OnData writes what c read to its peer.
func (spliceHandler) OnData(c *Conn) {
	peer, _ := c.ctx.(*Conn)
	if peer == nil {
		return // the client's side is made right after the pair's opens
	}
	b, _ := c.Peek(c.Buffered())
	if _, err := peer.Write(b); err != nil {
		_, _ = c.Discard(len(b))
		_ = c.Close()
		return
	}
	_, _ = c.Discard(len(b))
}

// OnEOF half-closes c's peer, or closes both once both directions ended.
func (spliceHandler) OnEOF(c *Conn) {
	peer, _ := c.ctx.(*Conn)
	if peer == nil || peer.eof {
		// Both directions have ended.
		_ = c.Close()
		if peer != nil {
			_ = peer.Close()
		}
		return
	}
	_ = peer.CloseWrite()
}

// OnClose closes c's peer once it has sent what it holds.
func (spliceHandler) OnClose(c *Conn, _ error) {
	if peer, _ := c.ctx.(*Conn); peer != nil {
		_ = peer.Close()
	}
}
