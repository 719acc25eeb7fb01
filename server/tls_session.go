package server

import (
	"crypto/tls"
	"errors"
	"net"

	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/handoff"
	"github.com/subordinate/subordinate/internal/tls13"
)

// handOffSession hands a TLS 1.3 connection this worker terminated, and
// whose key another worker owns, to that worker with its session: the
// client's socket goes over the hand-off link as a plain connection's
// does, with the traffic secrets and sequence numbers crypto/tls left
// after the handshake and the bytes read past the key (frame.TLSSession).
// The owner goes on with the connection's records itself
// (internal/tls13), as a local TLS Conn on its loop: after this, the
// connection costs this worker nothing, where a splice or a relay costs
// it a hop per read and per write (docs/TLS.md).
//
// It runs on the handshake's goroutine and reports whether the
// connection is handed off (or gone): then tc is not to be used again.
// It reports false, with nothing changed, when the session cannot move
// (TLS 1.2, more than a hand-off message holds, the owner's link down or
// full): the caller splices or relays instead.
func (r *routed) handOffSession(ref fedRef, tc *tls.Conn, key []byte, owner int, early []byte, info *TLSInfo) bool {
	st, raw, plain, err := tls13.Export(tc)
	if err != nil {
		r.log.Debug("TLS connection relayed, not handed off", "owner", owner, "err", err)
		return false
	}
	s := &frame.TLSSession{
		Suite:        st.Suite,
		ClientSecret: st.ClientSecret, ServerSecret: st.ServerSecret,
		ClientSeq: st.ClientSeq, ServerSeq: st.ServerSeq,
		Info:  *info,
		Plain: append(append([]byte(nil), early...), plain...),
	}
	done := make(chan bool, 1)
	if err := r.shard.run(func() { done <- r.sendSession(ref, s, raw, key, owner) }); err != nil {
		return false // the loop has stopped: so will the fallback
	}
	select {
	case handed := <-done:
		return handed
	case <-r.stopped: // the loop ended before it ran the function
		return false
	}
}

// sendSession sends the hand-off of handOffSession, on the loop, if the
// owner's link takes it now. raw are the client's records crypto/tls read
// and did not decrypt; the records the loop read since follow them.
func (r *routed) sendSession(ref fedRef, s *frame.TLSSession, raw, key []byte, owner int) bool {
	if !ref.live() {
		return true // the client went away: nothing left to serve
	}
	gc := ref.gc
	if gc.OutboundBuffered() > 0 {
		return false // the handshake's last bytes are not all sent
	}
	l := r.links.Get(owner)
	if l == nil {
		return false
	}
	early := append(raw, ref.f.buffered()...)
	if gc.InboundBuffered() > 0 {
		b, _ := gc.Peek(-1)
		early = append(early, b...)
	}
	m := frame.Handoff{Key: key, Listener: uint16(max(r.eng.Listener(gc), 0)), Client: ref.pc.client, Local: ref.pc.local,
		Early: early, Session: s}
	if key == nil {
		m.Direct, m.Shard = true, uint32(owner)
	}
	msg, err := frame.AppendHandoff(r.msgBuf[:0], &m)
	if err != nil {
		return false // more buffered than a hand-off message holds
	}
	r.msgBuf = msg
	if err := l.TrySend(msg, gc.Fd()); err != nil {
		if errors.Is(err, handoff.ErrPeerGone) {
			r.links.Down(owner, l)
		}
		return false
	}
	r.gstats.tlsHandedOff.Add(1)
	ref.f.take()
	ref.pc.fed = nil
	_ = gc.Close() // the owner holds the socket now
	return true
}

// openSession opens, on the loop, a TLS connection another worker handed
// off with its session: a local TLS Conn whose records this worker reads
// and writes with the session's keys, with the client's records the
// sender read first and its decrypted bytes first of all.
func (r *routed) openSession(gc gnet.Conn, a *arrival, short bool) ([]byte, gnet.Action) {
	m := a.m
	reason := ""
	switch {
	case short || r.full():
		reason = "server busy"
		r.busy.Add(1)
	case r.remote(m.Key):
		// A sender with another node list: the session is not this
		// node's to relay.
		reason = "internal error"
		r.gstats.refused[refInternal].Add(1)
	}
	if reason != "" {
		r.logRefusal(gc.RemoteAddr(), reason)
		return r.sessionRefusal(m, reason), gnet.Close
	}
	tr := &tlsTransport{gc: gc, pending: m.Early, remote: gc.RemoteAddr()}
	tr.local, _ = r.eng.LocalAddr(gc)
	if m.Client.IsValid() { // declared by a PROXY header
		tr.remote, tr.local = net.TCPAddrFromAddrPort(m.Client), net.TCPAddrFromAddrPort(m.Local)
	}
	tc, err := tls13.New(tr, sessionState(m.Session), nil, nil)
	if err != nil {
		r.log.Error("refused a TLS session hand-off", "peer", a.via, "err", err)
		r.gstats.refused[refInternal].Add(1)
		return nil, gnet.Close
	}
	pc := r.pool.Get().(*pconn)
	pc.gen++
	pc.tls = true
	pc.client, pc.local = m.Client, m.Local
	gc.SetContext(pc)
	r.hold() // the gnet connection, until OnClose
	r.socks.Add(1)
	info := m.Session.Info
	c := r.newConn(m.Key, m.Direct, a.via)
	c.gc, c.remote, c.local, c.tls, c.fwd = gc, tr.remote, tr.local, &info, true
	c.tl = &tlsLoop{tc: tc, tr: tr, in: m.Session.Plain}
	tr.wrote = c.unsent.wrote
	pc.conn = c
	return nil, r.openLocal(pc, c)
}

// sessionState is the tls13 state of a handed-off session.
func sessionState(s *frame.TLSSession) *tls13.State {
	return &tls13.State{Suite: s.Suite, ClientSecret: s.ClientSecret, ServerSecret: s.ServerSecret,
		ClientSeq: s.ClientSeq, ServerSeq: s.ServerSeq}
}

// sessionRefusal is the refusal of a client whose TLS session was handed
// off to this worker, which will not serve it: the -ERR line and
// close_notify, encrypted with the session's keys, as the sender would
// have refused it. Without keys that work, nothing.
func (r *routed) sessionRefusal(m *frame.Handoff, reason string) []byte {
	b, err := tls13.Seal(sessionState(m.Session), appendRefusal(nil, r.form(false), reason, 0))
	if err != nil {
		return nil
	}
	return b
}

// refusalOf is the refusal, for reason, of the client of a hand-off
// message this worker cannot deliver: encrypted when the message carries
// a TLS session, in form otherwise.
func (r *routed) refusalOf(msg []byte, form refusalForm, reason string) []byte {
	if m, err := frame.ParseHandoff(msg, frame.MaxKeyLimit); err == nil && m.Session != nil {
		return r.sessionRefusal(m, reason)
	}
	return appendRefusal(nil, form, reason, 0)
}
