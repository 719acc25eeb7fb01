package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/keysrc"
	"github.com/subordinate/subordinate/internal/proxyproto"
)

// Where a new connection is in what comes before its key is known
// (pconn.stage).
const (
	stageKey   uint8 = iota // reading the key (Config.KeyFrom)
	stageProxy              // reading the PROXY header first
)

// initKeyFrom sets the shard's key source up from its Config.
func (r *routed) initKeyFrom() error {
	cfg := &r.info.Config
	var err error
	if r.src, err = keysrc.Parse(cfg.KeyFrom); err != nil {
		return err
	}
	if cfg.DefaultKey != "" {
		r.defaultKey = []byte(cfg.DefaultKey)
	}
	if cfg.AcceptProxyProtocol {
		if r.trusted, err = proxyproto.ParseTrusted(cfg.TrustedProxies); err != nil {
			return err
		}
	}
	return nil
}

// newPconn makes the per-connection state of the pool.
func (r *routed) newPconn() any {
	pc := new(pconn)
	switch {
	case r.src.HTTP():
		pc.http.Init(r.src, r.info.Config.MaxHTTPHead, r.info.Config.MaxKey)
	case r.src.Kind == keysrc.SNI:
		pc.hello.Init(0)
	}
	return pc
}

// resetPconn readies pc for its next connection.
func (pc *pconn) reset() {
	pc.conn, pc.detached, pc.fed = nil, false, nil
	pc.dec.Reset()
	pc.http.Reset()
	pc.hello.Reset()
	pc.stage, pc.tls = stageKey, false
	pc.client, pc.local = netip.AddrPort{}, netip.AddrPort{}
}

// acceptKeyed starts a new connection on the loop, in OnOpen: its key is
// then read in OnTraffic (readKey), after its PROXY header if the server
// takes one. A client-ip key needs no read: such a connection is routed
// here and now. tlsLn says the connection came in on a tls:// listener.
func (r *routed) acceptKeyed(gc gnet.Conn, tlsLn bool) ([]byte, gnet.Action) {
	rawTLS := tlsLn && r.src.BeforeTLS()
	if r.trusted != nil && !r.trustedPeer(gc.RemoteAddr()) {
		r.logRefusal(gc.RemoteAddr(), "untrusted PROXY source")
		return appendRefusal(nil, r.form(tlsLn), "untrusted PROXY source", 0), gnet.Close
	}
	if tlsLn && !rawTLS && r.trusted == nil {
		return r.acceptTLSFed(gc)
	}
	pc := r.pool.Get().(*pconn)
	if r.src.Kind == keysrc.Frame {
		if err := pc.dec.Init(r.enc, r.info.Config.MaxKey); err != nil {
			r.pool.Put(pc)
			return frame.AppendError(nil, frame.Reason(err)), gnet.Close
		}
	}
	pc.gen++
	pc.tls = tlsLn
	gc.SetContext(pc)
	r.hold()
	r.socks.Add(1) // until OnClose
	if r.trusted != nil {
		pc.stage = stageProxy
	} else if r.src.Kind == keysrc.ClientIP {
		return nil, r.routeClientIP(gc, pc)
	}
	gen := pc.gen
	pc.timer = r.afterFunc(r.info.Config.PreambleTimeout, func() {
		if gc.Context() == pc && pc.gen == gen && pc.conn == nil && !pc.detached {
			r.refuseConn(gc, "preamble timeout")
			_ = gc.Close()
		}
	})
	return nil, gnet.None
}

// afterFunc runs f on the loop after d.
func (r *routed) afterFunc(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(d, func() { _ = r.shard.run(f) })
}

// readKey reads what comes before a connection's key and the key itself
// from what gnet has buffered, in OnTraffic, and dispatches the
// connection once its key is known.
func (r *routed) readKey(gc gnet.Conn, pc *pconn) gnet.Action {
	buf, _ := gc.Peek(-1)
	if pc.stage == stageProxy {
		h, n, err := proxyproto.ParseInbound(buf)
		if errors.Is(err, proxyproto.ErrShort) {
			return gnet.None
		}
		if err != nil {
			return r.refuseConn(gc, "bad PROXY header: "+err.Error())
		}
		_, _ = gc.Discard(n)
		buf = buf[n:]
		if !h.Local {
			pc.client, pc.local = h.Src, h.Dst
		}
		pc.stage = stageKey
		switch {
		case pc.tls && !r.src.BeforeTLS():
			pc.timer.Stop()
			return r.acceptTLSProxied(gc, pc)
		case r.src.Kind == keysrc.ClientIP:
			pc.timer.Stop()
			return r.routeClientIP(gc, pc)
		case len(buf) == 0:
			return gnet.None
		}
	}
	var (
		p    frame.Preamble
		done bool
		err  error
	)
	switch {
	case r.src.Kind == keysrc.Frame:
		var n int
		n, done, err = pc.dec.Feed(buf)
		if n > 0 {
			_, _ = gc.Discard(n)
		}
		if err != nil {
			return r.refuseConn(gc, frame.Reason(err))
		}
		p = pc.dec.Preamble()
	case r.src.Kind == keysrc.SNI:
		done, err = pc.hello.Feed(buf)
		if err != nil {
			return r.refuseConn(gc, helloReason(err))
		}
		p.Key = pc.hello.ServerName()
	default: // HTTP
		done, err = pc.http.Feed(buf)
		if err != nil {
			var he *keysrc.HTTPError
			if errors.As(err, &he) {
				return r.refuseConnStatus(gc, httpReason(he), he.Status)
			}
			return r.refuseConn(gc, "bad HTTP request: "+err.Error())
		}
		p.Key = pc.http.Key()
		if shard, token, ok := pc.http.Direct(); ok {
			p = frame.Preamble{Direct: true, Shard: shard, Token: token}
		}
	}
	if !done {
		return gnet.None
	}
	pc.timer.Stop()
	if !p.Direct && len(p.Key) == 0 {
		if r.defaultKey == nil {
			return r.refuseConn(gc, noKeyReason(r.src))
		}
		p.Key = r.defaultKey
	}
	return r.dispatch(gc, pc, p)
}

// routeClientIP routes a connection by its client's address.
func (r *routed) routeClientIP(gc gnet.Conn, pc *pconn) gnet.Action {
	addr := pc.client.Addr()
	if !addr.IsValid() {
		if ta, ok := gc.RemoteAddr().(*net.TCPAddr); ok {
			addr = ta.AddrPort().Addr()
		}
	}
	p := frame.Preamble{Key: r.src.ClientIPKey(addr)}
	if p.Key == nil {
		if r.defaultKey == nil {
			return r.refuseConn(gc, noKeyReason(r.src))
		}
		p.Key = r.defaultKey
	}
	return r.dispatch(gc, pc, p)
}

// trustedPeer reports whether a PROXY header may come from remote.
func (r *routed) trustedPeer(remote net.Addr) bool {
	switch a := remote.(type) {
	case *net.TCPAddr:
		return r.trusted.Contains(a.AddrPort().Addr())
	case *net.UnixAddr:
		return r.trusted.Unix()
	}
	return false
}

// remoteOf returns the client's address of a connection: the one its
// PROXY header declared, or its socket's.
func remoteOf(gc gnet.Conn, pc *pconn) net.Addr {
	if pc.client.IsValid() {
		return net.TCPAddrFromAddrPort(pc.client)
	}
	return gc.RemoteAddr()
}

// localOf returns the address a PROXY header said the client connected
// to, or nil (the socket's is found when asked for).
func localOf(pc *pconn) net.Addr {
	if pc.local.IsValid() {
		return net.TCPAddrFromAddrPort(pc.local)
	}
	return nil
}

// proxiedConn is a client socket whose addresses a PROXY header
// declared.
type proxiedConn struct {
	net.Conn
	remote, local net.Addr
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }
func (c *proxiedConn) LocalAddr() net.Addr  { return c.local }

// CloseWrite half-closes the connection when it can (a relay passes an
// EOF on with it), and closes it otherwise.
func (c *proxiedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// withAddrs returns nc presenting the addresses of pc's PROXY header,
// when it had one.
func withAddrs(nc net.Conn, pc *pconn) net.Conn {
	if !pc.client.IsValid() {
		return nc
	}
	return &proxiedConn{Conn: nc, remote: net.TCPAddrFromAddrPort(pc.client), local: net.TCPAddrFromAddrPort(pc.local)}
}

// helloReason is the refusal reason of a ClientHello that cannot be read.
func helloReason(err error) string {
	if errors.Is(err, keysrc.ErrNotTLS) {
		return "not TLS: " + err.Error()
	}
	return "bad ClientHello: " + err.Error()
}

// httpReason is the refusal reason of an HTTP request head that cannot be
// read.
func httpReason(he *keysrc.HTTPError) string {
	if he.Status == 414 || he.Status == 431 {
		return "HTTP request head too large: " + he.Reason
	}
	return fmt.Sprintf("bad HTTP request: %s", he.Reason)
}
