// Package proxyproto encodes and decodes PROXY protocol headers (HAProxy's
// proxy-protocol.txt): version 2 headers the proxy handler sends to its
// upstreams, so that they learn the client's address, the TLS summary and
// the connection's key; and inbound version 1 and 2 headers a load
// balancer in front sends a worker (ParseInbound), from the networks an
// operator trusts (Trusted).
package proxyproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
)

// Signature starts every version 2 header.
var Signature = [12]byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// TLV types used by Subordinate.
const (
	TypeALPN      = 0x01 // PP2_TYPE_ALPN: the negotiated protocol
	TypeAuthority = 0x02 // PP2_TYPE_AUTHORITY: the TLS server name (SNI)
	TypeSSL       = 0x20 // PP2_TYPE_SSL: TLS was terminated; sub-TLVs follow
	SubtypeSSLVer = 0x21 // PP2_SUBTYPE_SSL_VERSION: "TLSv1.3"...
	// TypeKey carries the connection's Subordinate key. It is the first of
	// the types reserved for applications (PP2_TYPE_MIN_CUSTOM, 0xE0).
	TypeKey = 0xE0
)

// SSL client bits (PP2_CLIENT_*).
const (
	ClientSSL      = 0x01
	ClientCertConn = 0x02
	ClientCertSess = 0x04
)

const (
	verCmdProxy = 0x21 // version 2, PROXY
	verCmdLocal = 0x20 // version 2, LOCAL
	famUnspec   = 0x00
	famTCP4     = 0x11
	famTCP6     = 0x21
	famUnix     = 0x31
	unixAddrLen = 108
)

// Errors of Read.
var (
	ErrNoSignature = errors.New("proxyproto: no PROXY protocol v2 signature")
	ErrVersion     = errors.New("proxyproto: unsupported version or command")
	ErrMalformed   = errors.New("proxyproto: malformed header")
)

// TLV is one type-length-value field.
type TLV struct {
	Type  byte
	Value []byte
}

// Header is a version 2 header.
type Header struct {
	// Local marks a LOCAL command (no addresses): a health check.
	Local bool
	// Source and Destination are the client's address and the address
	// it connected to: *net.TCPAddr or *net.UnixAddr. With other or mixed
	// kinds, the header carries no addresses (AF_UNSPEC).
	Source, Destination net.Addr
	// TLVs follow the addresses, in order.
	TLVs []TLV
}

// AppendSSL appends a PP2_TYPE_SSL TLV saying TLS was terminated, with
// its version name and whether the client presented a verified
// certificate.
func AppendSSL(tlvs []TLV, version string, clientCert bool) []TLV {
	client := byte(ClientSSL)
	if clientCert {
		client |= ClientCertConn | ClientCertSess
	}
	v := []byte{client, 0, 0, 0, 0} // verify = 0: the certificate, if any, verified
	v = append(v, SubtypeSSLVer, 0, 0)
	binary.BigEndian.PutUint16(v[len(v)-2:], uint16(len(version)))
	v = append(v, version...)
	return append(tlvs, TLV{Type: TypeSSL, Value: v})
}

// Append appends the encoded header to dst.
func (h *Header) Append(dst []byte) ([]byte, error) {
	var body []byte
	fam := byte(famUnspec)
	cmd := byte(verCmdProxy)
	if h.Local {
		cmd = verCmdLocal
	} else {
		fam, body = addresses(h.Source, h.Destination)
	}
	for _, t := range h.TLVs {
		if len(t.Value) > 0xFFFF {
			return dst, fmt.Errorf("proxyproto: TLV %#x: %d bytes is too long", t.Type, len(t.Value))
		}
		body = append(body, t.Type, byte(len(t.Value)>>8), byte(len(t.Value)))
		body = append(body, t.Value...)
	}
	if len(body) > 0xFFFF {
		return dst, fmt.Errorf("proxyproto: header body of %d bytes is too long", len(body))
	}
	dst = append(dst, Signature[:]...)
	dst = append(dst, cmd, fam, byte(len(body)>>8), byte(len(body)))
	return append(dst, body...), nil
}

// addresses encodes the address block, or AF_UNSPEC when it cannot.
func addresses(src, dst net.Addr) (byte, []byte) {
	switch s := src.(type) {
	case *net.TCPAddr:
		d, ok := dst.(*net.TCPAddr)
		if !ok {
			return famUnspec, nil
		}
		sa, _ := netip.AddrFromSlice(s.IP)
		da, _ := netip.AddrFromSlice(d.IP)
		sa, da = sa.Unmap(), da.Unmap()
		var b []byte
		fam := byte(famTCP6)
		if sa.Is4() && da.Is4() {
			fam = famTCP4
			s4, d4 := sa.As4(), da.As4()
			b = append(append(b, s4[:]...), d4[:]...)
		} else {
			s16, d16 := sa.As16(), da.As16()
			b = append(append(b, s16[:]...), d16[:]...)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(s.Port))
		return fam, binary.BigEndian.AppendUint16(b, uint16(d.Port))
	case *net.UnixAddr:
		d, ok := dst.(*net.UnixAddr)
		if !ok {
			return famUnspec, nil
		}
		// Each address is a sun_path: NUL-padded, and a path of all
		// 108 bytes has no NUL, as Read takes it.
		b := make([]byte, 2*unixAddrLen)
		copy(b[:unixAddrLen], s.Name)
		copy(b[unixAddrLen:], d.Name)
		return famUnix, b
	}
	return famUnspec, nil
}

// MaxHeader is the longest possible version 2 header.
const MaxHeader = 16 + 0xFFFF

// Read reads one version 2 header from r, and nothing after it.
func Read(r io.Reader) (*Header, error) {
	var pre [16]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("proxyproto: %w", err)
	}
	if [12]byte(pre[:12]) != Signature {
		return nil, ErrNoSignature
	}
	h := &Header{}
	switch pre[12] {
	case verCmdProxy:
	case verCmdLocal:
		h.Local = true
	default:
		return nil, ErrVersion
	}
	body := make([]byte, binary.BigEndian.Uint16(pre[14:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("proxyproto: %w", err)
	}
	var n int
	switch pre[13] {
	case famUnspec:
	case famTCP4:
		if len(body) < 12 {
			return nil, ErrMalformed
		}
		h.Source = &net.TCPAddr{IP: net.IP(body[0:4]).To16(), Port: int(binary.BigEndian.Uint16(body[8:]))}
		h.Destination = &net.TCPAddr{IP: net.IP(body[4:8]).To16(), Port: int(binary.BigEndian.Uint16(body[10:]))}
		n = 12
	case famTCP6:
		if len(body) < 36 {
			return nil, ErrMalformed
		}
		h.Source = &net.TCPAddr{IP: net.IP(body[0:16]), Port: int(binary.BigEndian.Uint16(body[32:]))}
		h.Destination = &net.TCPAddr{IP: net.IP(body[16:32]), Port: int(binary.BigEndian.Uint16(body[34:]))}
		n = 36
	case famUnix:
		if len(body) < 2*unixAddrLen {
			return nil, ErrMalformed
		}
		h.Source = &net.UnixAddr{Net: "unix", Name: cstring(body[:unixAddrLen])}
		h.Destination = &net.UnixAddr{Net: "unix", Name: cstring(body[unixAddrLen : 2*unixAddrLen])}
		n = 2 * unixAddrLen
	default:
		return nil, fmt.Errorf("%w: family %#x", ErrMalformed, pre[13])
	}
	if h.Local {
		h.Source, h.Destination = nil, nil
	}
	for rest := body[n:]; len(rest) > 0; {
		if len(rest) < 3 {
			return nil, ErrMalformed
		}
		l := int(binary.BigEndian.Uint16(rest[1:3]))
		if len(rest) < 3+l {
			return nil, ErrMalformed
		}
		h.TLVs = append(h.TLVs, TLV{Type: rest[0], Value: rest[3 : 3+l]})
		rest = rest[3+l:]
	}
	return h, nil
}

// Find returns the value of the first TLV of type t.
func (h *Header) Find(t byte) ([]byte, bool) {
	for _, v := range h.TLVs {
		if v.Type == t {
			return v.Value, true
		}
	}
	return nil, false
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
