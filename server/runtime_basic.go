package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/internal/gnetx"
)

// basicRuntime is the un-routed shard runtime: the process model's own,
// small, test double of a shard, and nothing more. It runs a real gnet
// loop on the listeners the master passed (internal/gnetx), reads the
// preamble (Config.Frame, bounded by MaxKey, timed by PreambleTimeout;
// -ERR and a close on error), replies "shard=<index> pid=<pid>\n" and then
// echoes every byte. It does NOT route: every connection is served by the
// worker that accepted it, and it never calls the Handler. The mesh links
// it is given are only held open. The routed runtime of issue 4 replaces
// it (see newShardRuntime).
type basicRuntime struct {
	info *shardInfo
	eng  *gnetx.Engine
	gnet.BuiltinEventEngine

	mu    sync.Mutex
	peers map[int]*os.File

	// Loop state: touched on the loop only.
	conns    map[gnet.Conn]*basicConn
	draining bool
	refuse   bool // draining where the listeners could not be removed
}

type basicConn struct {
	keyed  bool
	closed bool
	timer  *time.Timer
}

func newBasicRuntime(info *shardInfo) (shardRuntime, error) {
	r := &basicRuntime{info: info, peers: info.Peers, conns: make(map[gnet.Conn]*basicConn)}
	var lns []gnetx.Listener
	for _, l := range info.Listeners {
		gl := gnetx.Listener{FD: l.FD}
		if l.Network == "unix" {
			gl.Addr = &net.UnixAddr{Name: l.Address, Net: "unix"}
		} else if ta, err := net.ResolveTCPAddr("tcp", l.Address); err == nil {
			gl.Addr = ta
		}
		lns = append(lns, gl)
	}
	r.eng = gnetx.New(gnetx.Config{Listeners: lns, Logger: info.Logger})
	return r, nil
}

func (r *basicRuntime) Serve(ready func()) error {
	if err := r.eng.Start(r); err != nil {
		r.closePeers()
		return fmt.Errorf("shard %d: %w", r.info.Index, err)
	}
	ready()
	<-r.eng.Done()
	r.closePeers()
	if err := r.eng.Err(); !errors.Is(err, gnetx.ErrStopped) {
		return err
	}
	return nil
}

func (r *basicRuntime) closePeers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, f := range r.peers {
		f.Close()
		delete(r.peers, p)
	}
}

func (r *basicRuntime) SetPeer(peer int, link *os.File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.peers[peer]; old != nil {
		old.Close()
	}
	r.peers[peer] = link
}

func (r *basicRuntime) Drain(deadline time.Time) {
	err := r.eng.Run(func() {
		r.draining = true
		if err := r.eng.StopAccepting(); err != nil {
			r.info.Logger.Warn("cannot stop accepting; refusing new connections instead", "err", err)
			r.refuse = true
		}
		if len(r.conns) == 0 {
			r.eng.Shutdown()
		}
	})
	if err != nil {
		return // stopped already
	}
	time.AfterFunc(time.Until(deadline), r.eng.Shutdown)
}

func (r *basicRuntime) Stop() { r.eng.Shutdown() }

func (r *basicRuntime) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if r.refuse {
		return []byte("-ERR server is draining\n"), gnet.Close
	}
	st := &basicConn{}
	r.conns[c] = st
	st.timer = time.AfterFunc(r.info.Config.PreambleTimeout, func() {
		_ = r.eng.Run(func() {
			if !st.keyed && !st.closed {
				r.refuseConn(c, "preamble timeout")
				_ = c.Close()
			}
		})
	})
	return nil, gnet.None
}

func (r *basicRuntime) OnClose(c gnet.Conn, _ error) gnet.Action {
	if st := r.conns[c]; st != nil {
		st.closed = true
		st.timer.Stop()
		delete(r.conns, c)
	}
	if r.draining && len(r.conns) == 0 {
		r.eng.Shutdown()
	}
	return gnet.None
}

func (r *basicRuntime) refuseConn(c gnet.Conn, reason string) gnet.Action {
	r.info.Logger.Debug("refused a connection", "remote", c.RemoteAddr(), "reason", reason)
	_, _ = c.Write([]byte("-ERR " + reason + "\n"))
	return gnet.Close
}

func (r *basicRuntime) OnTraffic(c gnet.Conn) gnet.Action {
	st := r.conns[c]
	if st == nil {
		return gnet.Close
	}
	if !st.keyed {
		n, reason := r.preamble(c)
		if reason != "" {
			return r.refuseConn(c, reason)
		}
		if n == 0 {
			return gnet.None // wait for more
		}
		_, _ = c.Discard(n)
		st.keyed = true
		st.timer.Stop()
		_, _ = c.Write([]byte("shard=" + strconv.Itoa(r.info.Index) + " pid=" + strconv.Itoa(os.Getpid()) + "\n"))
	}
	if c.InboundBuffered() > 0 {
		b, _ := c.Next(-1)
		_, _ = c.Write(b)
	}
	if c.OutboundBuffered() > r.info.Config.ConnBufferLimit {
		r.info.Logger.Info("closing a connection over its buffer limit", "remote", c.RemoteAddr(), "limit", r.info.Config.ConnBufferLimit)
		return gnet.Close
	}
	return gnet.None
}

// preamble looks for a complete preamble in c's buffer: it returns its
// length, 0 if more bytes are needed, or a reason to refuse.
func (r *basicRuntime) preamble(c gnet.Conn) (int, string) {
	max := r.info.Config.MaxKey
	buf, _ := c.Peek(-1)
	if r.info.Config.Frame == "binary" {
		if len(buf) < 3 {
			return 0, ""
		}
		if buf[0] != 0xb1 {
			return 0, "bad preamble"
		}
		l := int(binary.BigEndian.Uint16(buf[1:3]))
		switch {
		case l == 0:
			return 0, "empty key"
		case l > max:
			return 0, fmt.Sprintf("key too long: longer than %d bytes", max)
		case len(buf) < 3+l:
			return 0, ""
		}
		return 3 + l, ""
	}
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		if len(buf) > max+1 {
			return 0, fmt.Sprintf("key too long: longer than %d bytes", max)
		}
		return 0, ""
	}
	key := bytes.TrimSuffix(buf[:i], []byte("\r"))
	switch {
	case len(key) == 0:
		return 0, "empty key"
	case len(key) > max:
		return 0, fmt.Sprintf("key too long: longer than %d bytes", max)
	}
	return i + 1, ""
}
