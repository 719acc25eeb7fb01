package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/shard"
)

// isTLS reports whether gc came in on a tls:// listener.
func (r *routed) isTLS(gc gnet.Conn) bool {
	i := r.eng.Listener(gc)
	return i >= 0 && i < len(r.tlsLn) && r.tlsLn[i]
}

// acceptTLS takes a connection of a tls:// listener off the loop at once:
// crypto/tls runs on the socket in Go's runtime poller (docs/TLS.md says
// why), then the decrypted stream is served like a forwarded one.
func (r *routed) acceptTLS(gc gnet.Conn) ([]byte, gnet.Action) {
	if r.refuse {
		return nil, gnet.Close
	}
	fd, err := gc.Dup()
	if err != nil {
		r.log.Error("cannot take a TLS connection", "err", err)
		return nil, gnet.Close
	}
	r.forwarding.Add(1)
	go r.serveTLS(fd)
	return nil, gnet.Close // the duplicate keeps the socket
}

// serveTLS handshakes, reads the preamble from the decrypted stream and
// routes. Handshake and preamble together must finish within
// PreambleTimeout.
func (r *routed) serveTLS(fd int) {
	defer func() {
		if r.forwarding.Add(-1) == 0 {
			_ = r.shard.Run(r.maybeDrained)
		}
	}()
	raw, err := fileConn(fd)
	if err != nil {
		r.log.Error("cannot take a TLS connection", "err", err)
		return
	}
	deadline := time.Now().Add(r.info.Config.PreambleTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	tc := tls.Server(raw, r.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		r.log.Info("TLS handshake failed", "remote", raw.RemoteAddr(), "err", handshakeReason(err, ctx))
		_ = raw.Close()
		return
	}
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
			r.log.Info("refused a connection", "remote", raw.RemoteAddr(), "reason", reason)
			_ = tc.Close()
			return
		}
	}
	_ = tc.SetReadDeadline(time.Time{})
	p := dec.Preamble()
	var (
		owner int
		key   []byte
	)
	if p.Direct {
		if err := frame.VerifyDirect(r.info.Secret, r.info.Count, p.Shard, p.Token); err != nil {
			r.tlsRefuse(tc, frame.Reason(err))
			return
		}
		owner = int(p.Shard)
	} else {
		key = append([]byte(nil), p.Key...)
		owner = shard.Owner(key, r.info.Count)
	}
	if owner != r.info.Index {
		r.forwardConn(tc, key, p.Direct, owner, early, info)
		return
	}
	c := &Conn{rt: r, key: key, direct: p.Direct, via: r.info.Index, remote: raw.RemoteAddr(), local: raw.LocalAddr(), tls: info}
	c.st = newStream(c, tc)
	if err := r.shard.Run(func() { r.openStream(c, early) }); err != nil {
		_ = tc.Close()
	}
}

// tlsRefuse answers one -ERR line over TLS and closes.
func (r *routed) tlsRefuse(tc *tls.Conn, reason string) {
	r.log.Info("refused a connection", "remote", tc.RemoteAddr(), "reason", reason)
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
