package builtin

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/keysrc"
	"github.com/subordinate/subordinate/internal/mesh"
	"github.com/subordinate/subordinate/internal/proxyproto"
	"github.com/subordinate/subordinate/server"
)

// ProxyConfig configures the proxy handler.
type ProxyConfig struct {
	// Upstream is the template of each shard's upstream address (see
	// Upstream). Required.
	Upstream string
	// ProxyProtocol makes every upstream connection start with a PROXY
	// protocol v2 header: the client's address, the address it connected
	// to, the key (TLV 0xE0), and when TLS was terminated its version,
	// SNI and ALPN (docs/TLS.md). Default: off.
	ProxyProtocol bool
	// DialTimeout bounds the connection to the upstream. Default: 5s.
	DialTimeout time.Duration
	// WriteTimeout bounds each write in the relay. Default: 30s.
	WriteTimeout time.Duration
	// HTTP says the clients speak HTTP (the server reads keys from HTTP
	// requests, serve --key-from http-*): a client whose upstream is
	// unavailable gets "502 Bad Gateway" rather than the -ERR line.
	// Default: off.
	HTTP bool
}

// Proxy makes the proxy handler: each shard relays the connections it
// owns to its own upstream, byte for byte in both directions, half-close
// included. With TLS listeners it makes Subordinate a TLS termination
// front: the upstream of the shard that owns a key gets every connection
// for that key, decrypted. An upstream that is down gets the client one
// "-ERR upstream unavailable" line and a close, and the operator a log
// line.
func Proxy(cfg ProxyConfig) (server.HandlerFactory, error) {
	if cfg.Upstream == "" {
		return nil, errors.New("proxy: no upstream (--upstream)")
	}
	up, err := ParseUpstream(cfg.Upstream)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	return func(s *server.Shard) (server.Handler, error) {
		network, addr, err := up.Expand(s.Index())
		if err != nil {
			return nil, err
		}
		return &proxy{cfg: cfg, shard: s, network: network, addr: addr}, nil
	}, nil
}

type proxy struct {
	server.BaseHandler
	cfg           ProxyConfig
	shard         *server.Shard
	network, addr string
}

func (p *proxy) OnOpen(c *server.Conn) {
	var hdr []byte
	if p.cfg.ProxyProtocol {
		h := proxyproto.Header{Source: tcpOrUnix(c.RemoteAddr()), Destination: tcpOrUnix(c.LocalAddr())}
		if k := c.Key(); len(k) > 0 {
			h.TLVs = append(h.TLVs, proxyproto.TLV{Type: proxyproto.TypeKey, Value: k})
		}
		if t := c.TLS(); t != nil {
			if t.ALPN != "" {
				h.TLVs = append(h.TLVs, proxyproto.TLV{Type: proxyproto.TypeALPN, Value: []byte(t.ALPN)})
			}
			if t.ServerName != "" {
				h.TLVs = append(h.TLVs, proxyproto.TLV{Type: proxyproto.TypeAuthority, Value: []byte(t.ServerName)})
			}
			h.TLVs = proxyproto.AppendSSL(h.TLVs, tlsVersionName(t.Version), t.PeerSubject != "")
		}
		var err error
		if hdr, err = h.Append(nil); err != nil {
			p.shard.Logger().Error("proxy: PROXY header", "err", err)
		}
	}
	nc, err := c.Hijack()
	if err != nil {
		p.shard.Logger().Error("proxy: cannot take the connection", "err", err)
		_ = c.Close()
		return
	}
	go p.relay(nc, hdr)
}

// relay connects to the upstream and relays until both sides are done.
func (p *proxy) relay(client net.Conn, hdr []byte) {
	up, err := net.DialTimeout(p.network, p.addr, p.cfg.DialTimeout)
	if err == nil && len(hdr) > 0 {
		_ = up.SetWriteDeadline(time.Now().Add(p.cfg.WriteTimeout))
		if _, err = up.Write(hdr); err != nil {
			up.Close()
		}
	}
	if err != nil {
		p.shard.Logger().Warn("proxy: upstream unavailable", "upstream", p.network+"://"+p.addr, "err", err)
		_ = client.SetWriteDeadline(time.Now().Add(p.cfg.WriteTimeout))
		if p.cfg.HTTP {
			_, _ = client.Write(keysrc.HTTPResponse(nil, http.StatusBadGateway, "upstream unavailable"))
		} else {
			_, _ = client.Write(frame.AppendError(nil, "upstream unavailable"))
		}
		_ = client.Close()
		return
	}
	if res := mesh.Relay(client, up, p.cfg.WriteTimeout); res.Err != nil {
		p.shard.Logger().Debug("proxy: relay ended", "err", res.Err)
	}
}

// tcpOrUnix gives an address the PROXY encoder understands: forwarded
// connections report addresses as strings (frame.Addr).
func tcpOrUnix(a net.Addr) net.Addr {
	switch a := a.(type) {
	case *net.TCPAddr, *net.UnixAddr:
		return a
	case nil:
		return nil
	}
	switch a.Network() {
	case "tcp", "tcp4", "tcp6":
		if ta, err := net.ResolveTCPAddr("tcp", a.String()); err == nil {
			return ta
		}
	case "unix":
		return &net.UnixAddr{Net: "unix", Name: a.String()}
	}
	return a
}

// tlsVersionName names a version as OpenSSL does ("TLSv1.3"), the form
// PROXY protocol consumers expect.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return tls.VersionName(v)
}
