package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/frame"
)

// isTLS reports whether gc came in on a tls:// listener.
func (r *routed) isTLS(gc gnet.Conn) bool {
	i := r.eng.Listener(gc)
	return i >= 0 && i < len(r.tlsLn) && r.tlsLn[i]
}

// acceptTLS takes a connection of a tls:// listener off the loop at once:
// crypto/tls runs the handshake on the socket in Go's runtime poller
// (docs/TLS.md says why); then a local connection comes back to the loop
// (tls_loop.go) and a forwarded one is relayed to its owner.
func (r *routed) acceptTLS(gc gnet.Conn) ([]byte, gnet.Action) {
	if r.refuse {
		r.gstats.refused[refDraining].Add(1)
		return nil, gnet.Close
	}
	raw, _, err := r.detach(gc)
	if err != nil {
		r.log.Warn("cannot take a TLS connection", "err", err)
		return nil, gnet.Close
	}
	r.hold()
	go r.serveTLS(raw)
	return nil, gnet.Close // the duplicate keeps the socket
}

// serveTLS handshakes, reads the preamble from the decrypted stream and
// routes. Handshake and preamble together must finish within
// PreambleTimeout.
func (r *routed) serveTLS(raw net.Conn) {
	defer r.release()
	opened := false // the socket is a local Conn's, which counts it out
	defer func() {
		if !opened {
			r.socks.Add(-1)
		}
	}()
	deadline := time.Now().Add(r.info.Config.PreambleTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	tr := newTLSTransport(raw)
	tc := tls.Server(tr, r.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		r.gstats.tls[tlsResult(err, ctx)].Add(1)
		r.gstats.refused[refTLSHandshake].Add(1)
		r.refusals.Info("TLS handshake failed", "err", handshakeReason(err, ctx), "remote", raw.RemoteAddr())
		_ = raw.Close()
		return
	}
	r.gstats.tls[tlsOK].Add(1)
	info := tlsInfo(tc.ConnectionState())

	_ = tc.SetReadDeadline(deadline)
	var dec frame.Decoder
	if err := dec.Init(r.enc, r.info.Config.MaxKey); err != nil {
		_ = tc.Close()
		return
	}
	buf := make([]byte, 4096)
	var early []byte
	for !dec.Done() {
		n, rerr := tc.Read(buf)
		if n > 0 {
			used, _, ferr := dec.Feed(buf[:n])
			if ferr != nil {
				r.tlsRefuse(tc, frame.Reason(ferr))
				return
			}
			if dec.Done() {
				early = append([]byte(nil), buf[used:n]...)
			}
		}
		if rerr != nil && !dec.Done() {
			reason := "connection closed before its key"
			if errors.Is(rerr, context.DeadlineExceeded) || isTimeout(rerr) {
				reason = "preamble timeout"
				r.tlsRefuse(tc, reason)
				return
			}
			r.logRefusal(raw.RemoteAddr(), reason)
			_ = tc.Close()
			return
		}
	}
	_ = tc.SetReadDeadline(time.Time{})
	owner, key, err := r.ownerOf(dec.Preamble())
	if err != nil {
		r.tlsRefuse(tc, frame.Reason(err))
		return
	}
	if owner != r.info.Index {
		r.gstats.forwardedTLS.Add(1)
		if r.links != nil {
			r.spliceTLS(tc, key, owner, early, info) // --forward handoff
		} else {
			r.forwardConn(tc, key, owner, early, info)
		}
		return
	}
	// A local connection goes back to the loop, where it is served with
	// no goroutine (tls_loop.go); gnet counts the socket from then on.
	if r.tlsToLoop(&tlsArrival{tc: tc, tr: tr, key: key, early: early, info: info}, raw) {
		opened = true
	} else {
		_ = tc.Close()
	}
}

// tlsRefuse answers one -ERR line over TLS and closes.
func (r *routed) tlsRefuse(tc *tls.Conn, reason string) {
	r.logRefusal(tc.RemoteAddr(), reason)
	_ = tc.SetWriteDeadline(time.Now().Add(r.writeTimeout))
	_, _ = tc.Write(frame.AppendError(nil, reason))
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
