package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/gnetx"
	"github.com/subordinate/subordinate/internal/handoff"
)

// handOff sends the socket of gc, with its key and the bytes read past
// the preamble, to the owner over their hand-off link, on the loop, and
// lets gnet close its own descriptor. When the owner is restarting or its
// socket is full, a goroutine takes over and waits for it (handOffLater).
func (r *routed) handOff(gc gnet.Conn, pc *pconn, key []byte, owner int) gnet.Action {
	m := frame.Handoff{Key: key, Listener: uint16(max(r.eng.Listener(gc), 0)), TLS: pc.tls, Client: pc.client, Local: pc.local}
	if key == nil {
		m.Direct, m.Shard = true, uint32(owner)
	}
	m.Early, _ = gc.Peek(-1)
	msg, err := frame.AppendHandoff(r.msgBuf[:0], &m)
	if err != nil { // cannot happen: the decoder bounds the key
		r.log.Error("cannot hand off a connection", "err", err)
		return r.refuseConn(gc, "internal error")
	}
	r.msgBuf = msg
	if l := r.links.Get(owner); l != nil {
		err := l.TrySend(msg, gc.Fd())
		if err == nil {
			return gnet.Close // the owner holds the socket now
		}
		if errors.Is(err, handoff.ErrPeerGone) {
			r.links.Down(owner, l)
		}
	}
	fd, err := gc.Dup()
	if err != nil {
		r.log.Warn("cannot hand off a connection", "owner", owner, "err", err)
		return r.refuseConn(gc, "server busy")
	}
	r.hold()
	r.socks.Add(1) // the duplicate, until handOffLater closes it
	go r.handOffLater(fd, append([]byte(nil), msg...), owner, r.form(pc.tls))
	return gnet.Close // the duplicate keeps the socket
}

// handOffLater hands off the socket fd (a descriptor of this goroutine's
// own) once the owner is back or has room, waiting at most OwnerWait;
// otherwise the client is refused, in form. It runs on its own goroutine.
func (r *routed) handOffLater(fd int, msg []byte, owner int, form refusalForm) {
	defer r.release()
	defer r.socks.Add(-1)
	defer unix.Close(fd)
	deadline := time.Now().Add(r.info.Config.OwnerWait)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for {
		l, err := r.links.Wait(ctx, owner)
		reason := fmt.Sprintf("shard %d unavailable", owner)
		if err == nil {
			err = l.Send(msg, fd, deadline)
			if err == nil {
				return
			}
			if errors.Is(err, handoff.ErrPeerGone) {
				r.links.Down(owner, l)
				continue // the owner died: wait for the next one
			}
			reason = "server busy" // the owner is up and does not keep up
		}
		r.log.Warn("cannot hand off a connection", "owner", owner, "reason", reason, "err", err)
		r.countRefusal(reason)
		replyFD(fd, r.refusalOf(msg, form, reason))
		return
	}
}

// replyFD writes a refusal (an -ERR line, or what refusal.go says) to a
// client socket that is not in any poller, without waiting (a fresh
// socket has room for it), and shuts
// down the sending side. Then it lingers, as nginx's lingering close
// does: it reads and drops what the client sends until the client closes,
// for at most lingerTime and maxDiscard bytes, so that the close which
// follows is a FIN rather than a reset. A reset can reach the client
// before it reads the line, and it turns the end of the answer into an
// error. It runs on a goroutine of its own.
func replyFD(fd int, refusal []byte) {
	_, _ = unix.Write(fd, refusal)
	_ = unix.Shutdown(fd, unix.SHUT_WR)
	var buf [4096]byte
	deadline := time.Now().Add(lingerTime)
	for n := 0; n < maxDiscard; {
		k, err := unix.Read(fd, buf[:]) // non-blocking: the flag is the socket's
		switch {
		case k > 0:
			n += k
		case k == 0 && err == nil:
			return // the client closed
		case errors.Is(err, unix.EAGAIN):
			wait := time.Until(deadline)
			if wait <= 0 {
				return
			}
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if _, err := unix.Poll(pfd, int(wait/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
				return
			}
		default:
			return
		}
	}
}

// What replyFD reads and drops from a refused client, at most.
const (
	maxDiscard = 256 << 10
	lingerTime = 500 * time.Millisecond
)

// receiveHandoffs reads the sockets peer hands this worker until the link
// ends (the peer exited, or this worker stops). It runs on its own
// goroutine, one per link.
func (r *routed) receiveHandoffs(peer int, l *handoff.Link) {
	select {
	case <-r.shard.running:
	case <-r.stopped:
		return
	}
	bufs := handoff.NewBuffers()
	for {
		msg, fd, seq, err := l.Receive(bufs)
		if errors.Is(err, handoff.ErrBadMessage) {
			r.log.Error("bad hand-off message", "peer", peer, "err", err)
			continue
		}
		if err != nil {
			if r.links.Down(peer, l) {
				r.log.Info("hand-off link down", "peer", peer, "err", err)
			}
			r.resend(peer, l.Unacked())
			return
		}
		r.arrive(peer, l, seq, msg, fd)
	}
}

// resend hands off again the sockets a peer that died had been sent and
// had not opened: they wait for its successor (handOffLater), as new
// connections for it do. When this worker stops, they are closed.
func (r *routed) resend(peer int, un []handoff.Pending) {
	if len(un) == 0 {
		return
	}
	select {
	case <-r.stopped:
		for _, p := range un {
			_ = unix.Close(p.FD)
		}
		return
	default:
	}
	r.log.Info("handing off again what a peer had not opened", "peer", peer, "conns", len(un))
	for _, p := range un {
		r.hold()
		r.socks.Add(1)
		go r.handOffLater(p.FD, p.Msg, peer, r.handoffForm(p.Msg))
	}
}

// handoffForm returns the refusal form of the client of a hand-off
// message msg.
func (r *routed) handoffForm(msg []byte) refusalForm {
	m, err := frame.ParseHandoff(msg, frame.MaxKeyLimit)
	return r.form(err == nil && m.TLS)
}

// arrival is a handed-off socket on its way into the loop: it is the
// context of the new gnet connection in OnOpen.
type arrival struct {
	m      *frame.Handoff
	via    int
	link   *handoff.Link // the sender's, acknowledged in OnOpen
	seq    uint32
	hdr    *frame.StreamHeader // a stream hand-off's header (m.Stream)
	hdrLen int                 // its length, still on the socket until OnOpen
}

// ack tells the peer that sent a hand-off that this worker is done with
// it (opened, refused, or found closed): the peer lets its copy go.
// It does nothing for a socket that came another way (l nil).
func ack(l *handoff.Link, seq uint32) {
	if l != nil {
		_ = l.Ack(seq)
	}
}

// arrive checks a hand-off message and queues its socket for the loop,
// which adopts it as if it had accepted it (adopt.go) and opens it
// (openArrival). It runs on the link's receiving goroutine; fd is its
// own until the loop adopts it.
func (r *routed) arrive(peer int, l *handoff.Link, seq uint32, b []byte, fd int) {
	m, err := frame.ParseHandoff(b, r.info.Config.MaxKey)
	if err == nil && !r.owns(m.Key, m.Shard) {
		err = fmt.Errorf("key %s is not this shard's", printable(m.Key))
	}
	if err != nil {
		r.log.Error("refused a hand-off", "peer", peer, "err", err)
		r.gstats.refused[refInternal].Add(1)
		r.refuseArrival(fd, l, seq, r.arrivalRefusal(m, "internal error"))
		return
	}
	// The message lives in the link's buffer: keep a copy.
	own := append(append(make([]byte, 0, len(m.Key)+len(m.Early)), m.Key...), m.Early...)
	if m.Key != nil {
		m.Key = own[:len(m.Key):len(m.Key)]
	}
	if m.Early != nil {
		m.Early = own[len(own)-len(m.Early):]
	}
	if s := m.Session; s != nil {
		c := *s
		c.ClientSecret = append([]byte(nil), s.ClientSecret...)
		c.ServerSecret = append([]byte(nil), s.ServerSecret...)
		c.Plain = append([]byte(nil), s.Plain...)
		m.Session = &c
	}
	a := &arrival{m: m, via: peer, link: l, seq: seq}
	if m.Stream {
		// The sender relays a connection it terminated (TLS) through
		// this socketpair: its stream header comes first.
		if a.hdr, a.hdrLen, err = r.streamHeaderOf(fd, m); err != nil {
			r.log.Error("refused a hand-off", "peer", peer, "err", err)
			r.gstats.refused[refInternal].Add(1)
			unix.Close(fd)
			ack(l, seq)
			return
		}
	}
	s, err := gnetx.Inspect(fd)
	if errors.Is(err, gnetx.ErrNotConnected) {
		// The client reset the connection on its way here: nothing to
		// serve.
		r.log.Debug("a handed-off connection was reset before it arrived", "peer", peer)
		unix.Close(fd)
		ack(l, seq)
		return
	}
	if err != nil {
		r.log.Warn("cannot adopt a handed-off connection", "peer", peer, "err", err)
		r.gstats.refused[refBusy].Add(1)
		r.refuseArrival(fd, l, seq, r.arrivalRefusal(m, "server busy"))
		return
	}
	r.adopt(s, a)
}

// refuseArrival answers the client of a hand-off this worker will not
// open with refusal, on a goroutine of its own (replyFD lingers), and
// lets the sender forget it.
func (r *routed) refuseArrival(fd int, l *handoff.Link, seq uint32, refusal []byte) {
	ack(l, seq)
	r.hold()
	go func() {
		defer r.release()
		replyFD(fd, refusal)
		unix.Close(fd)
	}()
}

// arrivalRefusal is the refusal of the client of hand-off message m (nil:
// unreadable), for reason.
func (r *routed) arrivalRefusal(m *frame.Handoff, reason string) []byte {
	if m != nil && m.Session != nil {
		return r.sessionRefusal(m, reason)
	}
	return appendRefusal(nil, r.form(m != nil && m.TLS), reason, 0)
}

// openArrival opens a handed-off socket on the loop: from now on it is a
// local connection in every respect, with the bytes the accepting worker
// read waiting in front of gnet's buffer.
func (r *routed) openArrival(gc gnet.Conn, a *arrival, short bool) ([]byte, gnet.Action) {
	// Acknowledge before anything is read or written: from now on the
	// connection is this worker's, and dies with it; until now its
	// sender could hand it again to this worker's successor.
	if a.link != nil {
		if err := a.link.TryAck(a.seq); errors.Is(err, handoff.ErrFull) {
			go ack(a.link, a.seq)
		}
	}
	if a.hdrLen > 0 {
		if err := skipStreamHeader(gc.Fd(), a.hdrLen); err != nil {
			r.log.Error("refused a hand-off", "peer", a.via, "err", err)
			return nil, gnet.Close
		}
	}
	if a.m.Session != nil {
		return r.openSession(gc, a, short)
	}
	if short || r.full() {
		return r.refuseBusy(gc, a.m.TLS)
	}
	if !a.m.TLS && r.remote(a.m.Key) {
		return r.arrivalToNode(gc, a)
	}
	pc := r.pool.Get().(*pconn)
	pc.gen++
	gc.SetContext(pc)
	r.hold() // the gnet connection, until OnClose
	r.socks.Add(1)
	if a.m.TLS {
		// Routed before its handshake: this worker terminates TLS, from
		// the ClientHello the sender read (tls_fed_loop.go).
		pc.tls = true
		st := tlsStart{prefix: a.m.Early, routed: true, key: a.m.Key, via: a.via}
		if a.m.Client.IsValid() {
			pc.client, pc.local = a.m.Client, a.m.Local
			st.remote, st.local = net.TCPAddrFromAddrPort(a.m.Client), net.TCPAddrFromAddrPort(a.m.Local)
		}
		return nil, r.feedTLS(gc, pc, st)
	}
	c := r.newConn(a.m.Key, a.m.Direct, a.via)
	c.gc, c.remote, c.fwd, c.pre = gc, gc.RemoteAddr(), true, a.m.Early
	if a.m.Client.IsValid() { // declared by a PROXY header
		c.remote, c.local = net.TCPAddrFromAddrPort(a.m.Client), net.TCPAddrFromAddrPort(a.m.Local)
	}
	if h := a.hdr; h != nil { // relayed by the sender, through a socketpair
		c.relayed, c.remote, c.local, c.tls, c.pre = true, h.Client, h.Local, h.TLS, h.Early
	}
	pc.conn = c
	return nil, r.openLocal(pc, c)
}

// streamHeaderOf reads, without consuming it, the stream header a stream
// hand-off's socketpair fd starts with (the sender wrote it before it
// sent the socket; PreambleTimeout bounds the wait all the same), checks
// it names the hand-off's key, and returns it with its length. Nothing is
// taken from the socket until the hand-off is acknowledged, in OnOpen
// (skipStreamHeader): if this worker dies first, its successor gets the
// socket as it came.
func (r *routed) streamHeaderOf(fd int, m *frame.Handoff) (*frame.StreamHeader, int, error) {
	lim := frame.HeaderLimits{MaxKey: r.info.Config.MaxKey}
	deadline := time.Now().Add(r.info.Config.PreambleTimeout)
	// The prefix first, then a buffer of the header's own length.
	buf := make([]byte, frame.StreamHeaderPrefix)
	want, sized := frame.StreamHeaderPrefix, false
	for {
		have, _, err := unix.Recvfrom(fd, buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) || (err == nil && have > 0 && have < want):
			// Nothing yet, or part of it (poll would not wait for
			// more of what a peek leaves in place).
			if err := waitMore(fd, deadline, have > 0); err != nil {
				return nil, 0, fmt.Errorf("stream hand-off: %w", err)
			}
			continue
		case err != nil:
			return nil, 0, fmt.Errorf("stream hand-off: %w", err)
		case have == 0:
			return nil, 0, fmt.Errorf("stream hand-off: %w", io.ErrUnexpectedEOF)
		}
		if sized {
			break
		}
		if want, err = frame.StreamHeaderLen(buf, lim); err != nil {
			return nil, 0, fmt.Errorf("stream hand-off: %w", err)
		}
		buf, sized = make([]byte, want), true
	}
	hdr, err := frame.ReadStreamHeader(bytes.NewReader(buf[:want]), lim)
	if err != nil {
		return nil, 0, fmt.Errorf("stream hand-off: %w", err)
	}
	if hdr.Direct != m.Direct || string(hdr.Key) != string(m.Key) || (m.Direct && hdr.Shard != m.Shard) {
		return nil, 0, errors.New("stream hand-off: the stream header names another key")
	}
	return hdr, want, nil
}

// waitMore waits until fd has something to read (some: until more may
// have come), or deadline.
func waitMore(fd int, deadline time.Time, some bool) error {
	wait := time.Until(deadline)
	if wait <= 0 {
		return os.ErrDeadlineExceeded
	}
	if some {
		time.Sleep(min(wait, time.Millisecond))
		return nil
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if _, err := unix.Poll(pfd, int(wait/time.Millisecond)+1); err != nil && !errors.Is(err, unix.EINTR) {
		return fmt.Errorf("poll: %w", err)
	}
	return nil
}

// skipStreamHeader takes the stream header of an acknowledged stream
// hand-off off its socket, in OnOpen, before gnet has read anything: its
// n bytes are there already (streamHeaderOf saw them).
func skipStreamHeader(fd, n int) error {
	var buf [4096]byte
	for n > 0 {
		k, err := unix.Read(fd, buf[:min(n, len(buf))])
		if err != nil {
			return fmt.Errorf("stream hand-off: skip its header: %w", err)
		}
		if k == 0 {
			return fmt.Errorf("stream hand-off: skip its header: %w", io.ErrUnexpectedEOF)
		}
		n -= k
	}
	return nil
}
