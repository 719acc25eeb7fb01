package server

// unsent keeps a copy of the tail of what a local Conn wrote that gnet has
// not sent yet. gnet does not let its outbound buffer be read, and at a
// client's EOF it closes the connection after one last write that drops
// what the socket does not take at once: a Conn kept open after EOF
// (keepAfterEOF) takes the socket and must send those bytes itself, in
// order. The copy costs nothing while the client reads as fast as the
// handler writes (gnet's buffer is empty after each write); it is bounded
// by what gnet buffers (Config.ConnBufferLimit, past which the Conn is
// closed) plus one write.
type unsent struct {
	buf []byte
	off int // buf[off:] is the copy
}

// wrote records a write of p after which gnet holds pending bytes.
func (u *unsent) wrote(p []byte, pending int) {
	if pending == 0 {
		u.buf, u.off = u.buf[:0], 0
		return
	}
	u.buf = append(u.buf, p...)
	u.trim(pending)
}

// trim keeps only the last pending bytes, compacting when the dropped
// front outgrows the rest.
func (u *unsent) trim(pending int) {
	if have := len(u.buf) - u.off; have > pending {
		u.off += have - pending
	}
	if u.off > len(u.buf)-u.off {
		n := copy(u.buf, u.buf[u.off:])
		u.buf, u.off = u.buf[:n], 0
	}
}

// take returns a copy of the last pending bytes written (what gnet holds
// now) and forgets them.
func (u *unsent) take(pending int) []byte {
	if pending == 0 {
		u.buf, u.off = nil, 0
		return nil
	}
	u.trim(pending)
	b := append([]byte(nil), u.buf[u.off:]...)
	u.buf, u.off = nil, 0
	return b
}
