package bench

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"

	"github.com/subordinate/subordinate/internal/keysrc"
)

// MaxClientIPKeys is the most keys a client-ip run can have: one loopback
// address each (KeyAddr), 127.0.0.0 and 127.255.255.255 left out.
const MaxClientIPKeys = 1<<24 - 2

// sniSuffix makes a key a host name: key i is "k<i>.bench" with
// --key-from sni.
const sniSuffix = ".bench"

// KeyAddr returns the loopback address that a client-ip run binds the
// connections of key index i to, so that the server's key for them is
// that address: 127.a.b.c with (i+1) = a + 256·b + 65536·c, the low
// byte first, so that consecutive keys fall in distinct networks even when
// the server takes a prefix (client-ip/16: keys 0 to 254 in 255 distinct
// /16 networks; client-ip/24: keys 0 to 65534 in distinct /24 networks).
// Key 0 is 127.1.0.0, key 255 is 127.0.1.0. i must be in [0,
// MaxClientIPKeys).
func KeyAddr(i int) netip.Addr {
	v := uint32(i) + 1
	return netip.AddrFrom4([4]byte{127, byte(v), byte(v >> 8), byte(v >> 16)})
}

// KeyText returns key index i as the server reads it with source keyFrom
// (a --key-from value): "k<i>" for the preamble and the http-* sources,
// "k<i>.bench" for sni, KeyAddr(i) for client-ip (with a prefix, the
// server's key is that address's network instead).
func KeyText(keyFrom string, i int) (string, error) {
	src, err := keysrc.Parse(keyFrom)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return string(appendKeyText(nil, src.Kind, i)), nil
}

// appendKeyText appends key index i as a connection of a kind presents it.
func appendKeyText(dst []byte, kind keysrc.Kind, i int) []byte {
	switch kind {
	case keysrc.SNI:
		return append(appendKey(dst, i), sniSuffix...)
	case keysrc.ClientIP:
		return KeyAddr(i).AppendTo(dst)
	}
	return appendKey(dst, i)
}

// verifyKeyFrom checks the key source of c (defaults applied) against the
// rest of c; the error is not yet wrapped.
func (c *Config) verifyKeyFrom() error {
	src, err := keysrc.Parse(c.KeyFrom)
	if err != nil {
		return err
	}
	if src.Kind == keysrc.Frame {
		return nil
	}
	if c.Frame != FrameLine || len(c.Secret) > 0 || c.Shards != 0 {
		return fmt.Errorf("key-from %s sends no preamble: frame %v, secret and shards are for key-from frame", src, c.Frame)
	}
	switch src.Kind {
	case keysrc.SNI:
		if c.TLS == nil {
			return errors.New("key-from sni needs TLS")
		}
	case keysrc.ClientIP:
		if c.Keys > MaxClientIPKeys {
			return fmt.Errorf("key-from client-ip: keys %d over %d (one loopback address each)", c.Keys, MaxClientIPKeys)
		}
		host, _, err := net.SplitHostPort(c.Addr)
		if err != nil || c.network() != "tcp" {
			return fmt.Errorf("key-from client-ip needs a TCP address, not %q", c.Addr)
		}
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is4() || !ip.IsLoopback() {
			return fmt.Errorf("key-from client-ip binds each connection to a 127/8 address: the server must be at an IPv4 loopback address, not %q", host)
		}
	}
	return nil
}

// keyPlan is how the connections of a run present their keys (Config.KeyFrom).
type keyPlan struct {
	src keysrc.Source
	// refusal starts what a server sends instead of the first echo when it
	// refuses the key: "-ERR" after a preamble, "HTTP/" after a request head.
	refusal string
	// host and query are the Host header and the escaped query parameter
	// name of the http-* sources.
	host, query string
}

func newKeyPlan(cfg *Config) keyPlan {
	src, _ := keysrc.Parse(cfg.KeyFrom) // Verify has checked it
	p := keyPlan{src: src, refusal: errPrefix, host: "bench"}
	if src.HTTP() {
		p.refusal = "HTTP/"
		if host, port, err := net.SplitHostPort(cfg.Addr); err == nil && cfg.network() == "tcp" {
			p.host = net.JoinHostPort(host, port)
		}
		p.query = url.QueryEscape(src.Name)
	}
	return p
}

// atDial reports whether the key must be known to dial: it is in the
// TLS server name or the client's address.
func (p *keyPlan) atDial() bool { return p.src.Kind == keysrc.SNI || p.src.Kind == keysrc.ClientIP }

// appendOpening appends to dst what a connection with key index i writes
// before its first request: the preamble, or the HTTP/1.1 request head of
// an http-* source (nothing for sni and client-ip, whose key is in the
// handshake or the address). echoed is the part of it that the server
// echoes before the first reply: the request head, which the server gives
// its handler as early data, or nil. It stays valid until the next call.
func (w *worker) appendOpening(dst []byte, i int) (out, echoed []byte) {
	p := &w.r.plan
	switch {
	case p.src.Kind == keysrc.Frame:
		return w.appendPreamble(dst, i), nil
	case p.src.HTTP():
		w.key = appendKeyText(w.key[:0], p.src.Kind, i)
		w.head = p.appendHead(w.head[:0], w.key)
		return append(dst, w.head...), w.head
	}
	return dst, nil
}

// appendHead appends a GET request head that carries key where the source
// looks for it: at path segment N (the segments before it are "k":
// /k/k123 for http-path:2), in a header, a cookie or a query parameter.
func (p *keyPlan) appendHead(dst, key []byte) []byte {
	dst = append(dst, "GET /"...)
	if p.src.Kind == keysrc.HTTPPath {
		for range p.src.Segment - 1 {
			dst = append(dst, "k/"...)
		}
		dst = append(dst, key...)
	}
	if p.src.Kind == keysrc.HTTPQuery {
		dst = append(append(append(append(dst, '?'), p.query...), '='), key...)
	}
	dst = append(append(append(dst, " HTTP/1.1\r\nHost: "...), p.host...), "\r\n"...)
	switch p.src.Kind {
	case keysrc.HTTPHeader:
		dst = append(append(append(append(dst, p.src.Name...), ": "...), key...), "\r\n"...)
	case keysrc.HTTPCookie:
		dst = append(append(append(append(append(dst, "Cookie: "...), p.src.Name...), '='), key...), "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// dialer returns the dialer of a connection with key index i: for
// client-ip, bound to KeyAddr(i).
func (w *worker) dialerFor(i int) *net.Dialer {
	r := w.r
	if r.plan.src.Kind != keysrc.ClientIP {
		return &r.dialer
	}
	d := r.dialer
	d.LocalAddr = &net.TCPAddr{IP: KeyAddr(i).AsSlice()}
	d.Control = bindNoPort
	return &d
}

// tlsFor returns the TLS configuration of a connection with key index i:
// for sni, the run's with the key as ServerName.
func (w *worker) tlsFor(i int) *tls.Config {
	r := w.r
	if r.plan.src.Kind != keysrc.SNI {
		return r.tls
	}
	w.key = appendKeyText(w.key[:0], keysrc.SNI, i)
	t := r.tls.Clone()
	t.ServerName = string(w.key)
	return t
}

// sniTLS adapts the run's TLS configuration t to --key-from sni, where
// each connection's ServerName is its key: the certificate is verified
// against the name the run would verify without sni (TLS.ServerName, or
// the host of Addr), not against the key.
func sniTLS(cfg *Config, t *tls.Config) {
	if t.InsecureSkipVerify {
		return
	}
	name := t.ServerName
	if name == "" {
		if host, _, err := net.SplitHostPort(cfg.Addr); err == nil {
			name = host
		}
	}
	roots, next := t.RootCAs, t.VerifyConnection
	t.InsecureSkipVerify = true // verified below, against name
	t.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("bench: the server sent no certificate")
		}
		opts := x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return err
		}
		if next != nil {
			return next(cs)
		}
		return nil
	}
}

// keyFromName is the --key-from of a Report: "" for the preamble.
func keyFromName(spec string) string {
	src, err := keysrc.Parse(spec)
	if err != nil || src.Kind == keysrc.Frame {
		return ""
	}
	return src.String()
}

// headLimit bounds the request head a run sends (and so the reply buffer
// that reads its echo): its fixed text, a key of at most 11 digits, and
// the names of the source and the host.
func headLimit(p *keyPlan) int {
	return 128 + len(p.host) + 3*len(p.src.Name) + 2*p.src.Segment + len(strconv.Itoa(MaxKeys))
}
