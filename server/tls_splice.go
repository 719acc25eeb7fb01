package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/ctl"
	"github.com/subordinate/subordinate/internal/mesh"
)

// spliceTLS forwards a TLS connection this worker terminated to the
// worker that owns its key without the mesh: the TLS state cannot move,
// so this worker keeps the tls.Conn and relays its plaintext through a
// Unix socketpair, and hands the other end of the pair to the owner over
// their hand-off link (a stream hand-off, docs/PROTOCOL.md 6a). The pair
// starts with the stream header a mesh relay would send (the client's
// addresses, the TLS summary, the early bytes). The owner adopts its end
// into its event loop as it does a handed-off socket: no goroutine, no
// smux and no hand-off per read on its side. The hand-off waits for the
// owner like any other (OwnerWait, sent again to a successor if the owner
// dies first); if it gives up, its -ERR line goes into the pair and
// reaches the client through this relay, encrypted. It runs on the
// handshake's goroutine and returns when the connection ends.
func (r *routed) spliceTLS(tc *tls.Conn, key []byte, owner int, early []byte, info *TLSInfo) {
	pair, theirs, err := splicePair()
	if err != nil {
		r.log.Warn("cannot forward a TLS connection", "owner", owner, "err", err)
		r.gstats.refused[refBusy].Add(1)
		r.tlsRefuse(tc, "server busy")
		return
	}
	hdr := frame.StreamHeader{
		Direct: key == nil,
		Key:    key,
		Client: addrOf(tc.RemoteAddr()),
		Local:  addrOf(tc.LocalAddr()),
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
	b, err := frame.AppendStreamHeader(nil, &hdr)
	if err == nil {
		// The pair's buffer takes the header and the early bytes (at
		// most a few hundred KiB) before the owner reads anything.
		_ = pair.SetWriteDeadline(time.Now().Add(r.writeTimeout))
		if _, err = pair.Write(append(b, rest...)); err == nil {
			_ = pair.SetWriteDeadline(time.Time{})
		}
	}
	var msg []byte
	if err == nil {
		msg, err = frame.AppendHandoff(nil, &m)
	}
	if err != nil {
		unix.Close(theirs)
		pair.Close()
		r.log.Error("cannot forward a TLS connection", "owner", owner, "err", err)
		r.tlsRefuse(tc, "internal error")
		return
	}
	r.hold()
	r.socks.Add(1) // theirs, until handOffLater closes it
	go r.handOffLater(theirs, msg, owner, r.form(false))
	res := mesh.Relay(tc, pair, r.writeTimeout)
	if res.Err != nil {
		r.log.Debug("forwarded TLS connection ended", "owner", owner, "err", res.Err)
	}
}

// splicePair makes the socketpair of spliceTLS: this worker's end as a
// net.Conn, and the owner's as a raw non-blocking descriptor (close-on-
// exec on every system: internal/ctl makes the pair).
func splicePair() (mine net.Conn, theirs int, err error) {
	a, b, err := ctl.Socketpair()
	if err != nil {
		return nil, -1, err
	}
	defer b.Close()
	mine, err = net.FileConn(a)
	a.Close()
	if err != nil {
		return nil, -1, fmt.Errorf("socketpair: %w", err)
	}
	theirs, err = unix.FcntlInt(b.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err == nil {
		err = unix.SetNonblock(theirs, true) // gnet's, once adopted
	}
	if err != nil {
		mine.Close()
		if theirs >= 0 {
			unix.Close(theirs)
		}
		return nil, -1, fmt.Errorf("socketpair: %w", err)
	}
	return mine, theirs, nil
}
