package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/keysrc"
)

// isTLS reports whether gc came in on a tls:// listener.
func (r *routed) isTLS(gc gnet.Conn) bool {
	i := r.eng.Listener(gc)
	return i >= 0 && i < len(r.tlsLn) && r.tlsLn[i]
}

// acceptTLSProxied starts the handshake of a TLS connection whose PROXY
// header was read on the loop, fed by the loop (feedTLS): the bytes past
// the header start the TLS stream, and its key is read from the
// decrypted stream.
func (r *routed) acceptTLSProxied(gc gnet.Conn, pc *pconn) gnet.Action {
	return r.feedTLS(gc, pc, tlsStart{remote: remoteOf(gc, pc), local: localOf(pc)})
}

// terminateTLS serves a TLS connection routed before its handshake (by
// its server name or its address) to this shard: its handshake starts as
// acceptTLSProxied's does, from the bytes read so far (the ClientHello),
// and the connection comes back to the loop with its key.
func (r *routed) terminateTLS(gc gnet.Conn, pc *pconn, key []byte) gnet.Action {
	s := tlsStart{routed: true, key: key, via: r.info.Index}
	if pc.client.IsValid() {
		s.remote, s.local = remoteOf(gc, pc), localOf(pc)
	}
	return r.feedTLS(gc, pc, s)
}

// tlsStart is a TLS connection for serveTLS to terminate. gnet keeps its
// socket, and counts it, while the handshake runs (tls_fed_loop.go).
type tlsStart struct {
	// fed is the connection, and its transport, that the loop feeds.
	fed fedRef
	// prefix are bytes read before the handshake started that belong to
	// the TLS stream (a handed-off ClientHello): feedTLS gives them first.
	prefix []byte
	// remote and local are the addresses a PROXY header declared; nil:
	// the socket's.
	remote, local net.Addr
	// routed: the connection was routed before its handshake to this
	// shard, which owns key (nil: direct); via accepted it. Otherwise its
	// key is read from the decrypted stream.
	routed bool
	key    []byte
	via    int
}

// serveTLS handshakes, reads the key from the decrypted stream (unless
// the connection was routed already) and routes, on the goroutine
// feedTLS started. Handshake and key together must finish within
// PreambleTimeout.
func (r *routed) serveTLS(s tlsStart) {
	defer r.release()
	deadline := time.Now().Add(r.info.Config.PreambleTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	tr := newTLSTransport(s.fed.f)
	if s.remote != nil {
		tr.remote, tr.local = s.remote, s.local
	}
	tc := tls.Server(tr, r.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		r.gstats.tls[tlsResult(err, ctx)].Add(1)
		r.gstats.refused[refTLSHandshake].Add(1)
		r.refusals.Info("TLS handshake failed", "err", handshakeReason(err, ctx), "remote", tr.remote)
		_ = s.fed.f.Close()
		return
	}
	r.gstats.tls[tlsOK].Add(1)
	info := tlsInfo(tc.ConnectionState())
	if s.routed && r.remote(s.key) {
		r.tlsToNode(s.fed, tc, tr, s.key, nil, info)
		return
	}
	if s.routed {
		r.fedToLoop(s.fed, &tlsArrival{tc: tc, tr: tr, key: s.key, info: info, via: s.via})
		return
	}

	_ = tc.SetReadDeadline(deadline)
	p, early, ok := r.readTLSKey(tc)
	if !ok {
		return
	}
	_ = tc.SetReadDeadline(time.Time{})
	owner, key, err := r.ownerOf(p)
	if err != nil {
		r.tlsRefuse(tc, frame.Reason(err))
		return
	}
	if owner == r.info.Index && r.remote(key) {
		r.tlsToNode(s.fed, tc, tr, key, early, info)
		return
	}
	if owner != r.info.Index {
		r.gstats.forwardedTLS.Add(1)
		if r.sessionTLS && r.handOffSession(s.fed, tc, key, owner, early, info) {
			return
		}
		if r.spliceTLS { // Config.ForwardTLS
			r.spliceConn(s.fed, tc, tr, key, owner, early, info)
			return
		}
		// The mesh relay reads and writes the socket on Go's poller: it
		// leaves gnet, and this goroutine counts it until the relay ends.
		if !r.fedDetach(s.fed, tr) {
			_ = tc.Close()
			return
		}
		defer r.socks.Add(-1)
		r.forwardConn(tc, key, owner, early, info)
		return
	}
	// A local connection goes back to the loop, where it is served with
	// no goroutine (tls_loop.go).
	r.fedToLoop(s.fed, &tlsArrival{tc: tc, tr: tr, key: key, early: early, info: info, via: r.info.Index})
}

// readTLSKey reads a TLS connection's key from its decrypted stream, as
// readKey does on the loop for a plain one, and returns it with the
// decrypted bytes read past it (for an HTTP source, the whole request so
// far: nothing is consumed). It refuses the connection itself and
// reports false when it cannot.
func (r *routed) readTLSKey(tc *tls.Conn) (p frame.Preamble, early []byte, ok bool) {
	var dec frame.Decoder
	var hr keysrc.HTTPReader
	httpKey := r.src.HTTP()
	if httpKey {
		hr.Init(r.src, r.info.Config.MaxHTTPHead, r.info.Config.MaxKey)
	} else if err := dec.Init(r.enc, r.info.Config.MaxKey); err != nil {
		_ = tc.Close()
		return p, nil, false
	}
	var (
		buf  = make([]byte, 4096)
		all  []byte // HTTP: everything read
		done bool
	)
	for !done {
		n, rerr := tc.Read(buf)
		if n > 0 {
			switch {
			case httpKey:
				all = append(all, buf[:n]...)
				var ferr error
				if done, ferr = hr.Feed(all); ferr != nil {
					var he *keysrc.HTTPError
					if errors.As(ferr, &he) {
						r.tlsRefuseStatus(tc, httpReason(he), he.Status)
					} else {
						r.tlsRefuse(tc, "bad HTTP request: "+ferr.Error())
					}
					return p, nil, false
				}
				if done {
					early = all
					p.Key = hr.Key()
					if shard, token, direct := hr.Direct(); direct {
						p = frame.Preamble{Direct: true, Shard: shard, Token: token}
					}
				}
			default:
				used, fin, ferr := dec.Feed(buf[:n])
				if ferr != nil {
					r.tlsRefuse(tc, frame.Reason(ferr))
					return p, nil, false
				}
				if done = fin; done {
					early = append([]byte(nil), buf[used:n]...)
					p = dec.Preamble()
				}
			}
		}
		if rerr != nil && !done {
			if errors.Is(rerr, context.DeadlineExceeded) || isTimeout(rerr) {
				r.tlsRefuse(tc, "preamble timeout")
				return p, nil, false
			}
			r.logRefusal(tc.RemoteAddr(), "connection closed before its key")
			_ = tc.Close()
			return p, nil, false
		}
	}
	if !p.Direct && len(p.Key) == 0 {
		if r.defaultKey == nil {
			r.tlsRefuse(tc, noKeyReason(r.src))
			return p, nil, false
		}
		p.Key = r.defaultKey
	}
	return p, early, true
}

// tlsRefuse refuses a connection over its TLS (an -ERR line, or an HTTP
// response for an HTTP key source) and closes.
func (r *routed) tlsRefuse(tc *tls.Conn, reason string) { r.tlsRefuseStatus(tc, reason, 0) }

// tlsRefuseStatus is tlsRefuse with the HTTP status (0: derived).
func (r *routed) tlsRefuseStatus(tc *tls.Conn, reason string, status int) {
	r.logRefusal(tc.RemoteAddr(), reason)
	_ = tc.SetWriteDeadline(time.Now().Add(r.writeTimeout))
	_, _ = tc.Write(appendRefusal(nil, r.form(false), reason, status))
	_ = tc.Close()
}

// handshakeReason names why a handshake failed, for the operator's log.
func handshakeReason(err error, ctx context.Context) string {
	var rh tls.RecordHeaderError
	switch {
	case ctx.Err() != nil:
		return "handshake timeout"
	case errors.As(err, &rh):
		return "not TLS (plaintext on a TLS port?): " + err.Error()
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
