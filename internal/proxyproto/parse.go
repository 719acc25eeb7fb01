package proxyproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
)

// Bounds of an inbound header. A caller that buffers a connection's first
// bytes until ParseInbound stops returning ErrShort needs at most
// MaxInbound of them: a longer prefix is always refused.
const (
	// MaxV1 is the longest version 1 line, CRLF included
	// (proxy-protocol.txt section 2.1: "PROXY UNKNOWN" with two full IPv6
	// addresses and ports).
	MaxV1 = 107
	// MaxInboundLength is the largest version 2 length field accepted:
	// room for a Unix address block (216 bytes) and the TLVs that HAProxy,
	// AWS, Azure and GCP load balancers send, with a wide margin. The
	// protocol allows up to 65535; a longer header is ErrTooLarge.
	MaxInboundLength = 4096
	// MaxInbound is the longest header ParseInbound accepts.
	MaxInbound = 16 + MaxInboundLength
)

// TypeCRC32C is PP2_TYPE_CRC32C: a checksum of the whole version 2
// header, which ParseInbound verifies when present.
const TypeCRC32C = 0x03

// Errors of ParseInbound besides ErrMalformed and ErrVersion.
var (
	// ErrShort: the buffer is a valid but incomplete prefix of a header;
	// call again with more bytes.
	ErrShort = errors.New("proxyproto: incomplete PROXY header")
	// ErrNoProxyHeader: the buffer cannot start a version 1 or 2 header.
	ErrNoProxyHeader = errors.New("proxyproto: no PROXY protocol header")
	// ErrTooLarge: a version 2 length field over MaxInboundLength. It
	// wraps ErrMalformed.
	ErrTooLarge = fmt.Errorf("%w: v2 header longer than %d bytes", ErrMalformed, MaxInbound)
)

// The details of ErrMalformed and ErrVersion, allocated once: a refusal
// costs no allocation.
var (
	errV2Version  = fmt.Errorf("%w: v2 header of another version", ErrVersion)
	errV2Command  = fmt.Errorf("%w: v2 command neither LOCAL nor PROXY", ErrVersion)
	errV2UDP      = fmt.Errorf("%w: v2 UDP addresses on a stream connection", ErrVersion)
	errV2Family   = fmt.Errorf("%w: v2 unknown address family or protocol", ErrMalformed)
	errV2AddrLen  = fmt.Errorf("%w: v2 length shorter than its address block", ErrMalformed)
	errV2TLV      = fmt.Errorf("%w: v2 TLV overruns the header", ErrMalformed)
	errV2Checksum = fmt.Errorf("%w: v2 CRC32C checksum mismatch", ErrMalformed)
)

// Inbound is a PROXY header a client connection starts with, as sent by
// a load balancer in front of the server (HAProxy, AWS NLB, nginx...).
type Inbound struct {
	// Version is 1 (text) or 2 (binary).
	Version int
	// Local says the header carries no client address to use: a version 2
	// LOCAL command (the proxy's own connection, e.g. a health check), a
	// version 2 PROXY command over AF_UNSPEC or AF_UNIX, or version 1
	// "UNKNOWN". Use the socket's addresses.
	Local bool
	// Src is the client's address and Dst the one it connected to, as the
	// proxy sent them (a TCP6 header may carry IPv4-mapped addresses;
	// Unmap them if needed). Both are zero when Local.
	Src, Dst netip.AddrPort
	// TLVs are the version 2 type-length-value fields of a PROXY command,
	// in order (not for LOCAL, whose body is ignored). Each Value is a
	// slice of the buffer given to ParseInbound: valid while that buffer
	// is, copy it to keep it longer. A TypeCRC32C field, if any, has
	// been verified.
	TLVs []TLV
}

// ParseInbound parses the PROXY header, version 1 or 2, at the start of
// buf: all the bytes received so far on a connection. It returns the
// header and its length n once the whole header is in buf; the bytes
// after it are the client's. Otherwise n is 0 and the error is
//
//   - ErrShort (unwrapped: compare with ==) when buf is a valid but
//     incomplete prefix of a header, an empty buf included: call again
//     with more bytes. Fields are checked as they arrive, so that a
//     hopeless header is refused early; only an incomplete version 1 IPv6
//     address is checked just for its characters and length until the
//     space after it, and version 2 TLVs once the body is whole. Never
//     for MaxV1 bytes of version 1 or MaxInbound of version 2.
//   - ErrNoProxyHeader as soon as the first bytes agree with neither
//     "PROXY " nor the version 2 signature: "GET " fails at its first byte.
//   - ErrMalformed (ErrTooLarge being one) or ErrVersion, wrapped with
//     details, for a header that is not valid. UDP (families 0x12, 0x22) is
//     ErrVersion: unsupported on a stream connection.
//
// Version 1 is parsed strictly: single spaces, addresses of the declared
// family (dotted quad for TCP4, IPv6 text without zone for TCP6), decimal
// ports without leading zeros, CRLF within MaxV1 bytes. After "UNKNOWN"
// comes CRLF, or a space and anything up to the first CRLF, as the
// specification says. Version 2 checks the address block against the
// length, the TLVs against the body, and a CRC32C TLV against the header;
// the body of a LOCAL command is ignored, its family included.
//
// ParseInbound is pure and does not allocate, except for the TLV list of
// a version 2 header that has TLVs: it may be called on every read until
// the header is whole.
func ParseInbound(buf []byte) (Inbound, int, error) {
	if len(buf) == 0 {
		return Inbound{}, 0, ErrShort
	}
	switch buf[0] {
	case v1Prefix[0]:
		return parseV1(buf)
	case Signature[0]:
		return parseV2(buf)
	}
	return Inbound{}, 0, ErrNoProxyHeader
}

// Address block sizes of version 2.
const (
	addrLenTCP4 = 12
	addrLenTCP6 = 36
	addrLenUnix = 2 * unixAddrLen
)

// UDP and Unix datagram families of version 2.
const (
	famUDP4     = 0x12
	famUDP6     = 0x22
	famUnixDgrm = 0x32
)

var (
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	zeroCRC    [4]byte // stands for the checksum while it is computed
)

func parseV2(buf []byte) (Inbound, int, error) {
	k := min(len(buf), len(Signature))
	if string(buf[:k]) != string(Signature[:k]) {
		return Inbound{}, 0, ErrNoProxyHeader
	}
	if len(buf) <= 12 {
		return Inbound{}, 0, ErrShort
	}
	if buf[12]>>4 != 2 {
		return Inbound{}, 0, errV2Version
	}
	local := false
	switch buf[12] {
	case verCmdLocal:
		local = true
	case verCmdProxy:
	default:
		return Inbound{}, 0, errV2Command
	}
	if len(buf) <= 13 {
		return Inbound{}, 0, ErrShort
	}
	// LOCAL discards "the protocol block including the family"
	// (proxy-protocol.txt section 2.2): its family is not checked.
	addrLen := 0
	if !local {
		switch buf[13] {
		case famUnspec:
		case famTCP4:
			addrLen = addrLenTCP4
		case famTCP6:
			addrLen = addrLenTCP6
		case famUnix, famUnixDgrm:
			addrLen = addrLenUnix
		case famUDP4, famUDP6:
			return Inbound{}, 0, errV2UDP
		default:
			return Inbound{}, 0, errV2Family
		}
	}
	if len(buf) < 16 {
		return Inbound{}, 0, ErrShort
	}
	length := int(binary.BigEndian.Uint16(buf[14:16]))
	if length > MaxInboundLength {
		return Inbound{}, 0, ErrTooLarge
	}
	if length < addrLen {
		return Inbound{}, 0, errV2AddrLen
	}
	n := 16 + length
	if len(buf) < n {
		return Inbound{}, 0, ErrShort
	}
	h := Inbound{Version: 2, Local: true}
	if local {
		return h, n, nil
	}
	body := buf[16:n]
	switch buf[13] {
	case famTCP4:
		h.Local = false
		h.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[0:4])), binary.BigEndian.Uint16(body[8:10]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[4:8])), binary.BigEndian.Uint16(body[10:12]))
	case famTCP6:
		h.Local = false
		h.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[0:16])), binary.BigEndian.Uint16(body[32:34]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[16:32])), binary.BigEndian.Uint16(body[34:36]))
	}
	tlvs, err := parseTLVs(buf[:n], 16+addrLen)
	if err != nil {
		return Inbound{}, 0, err
	}
	h.TLVs = tlvs
	return h, n, nil
}

// parseTLVs parses the TLVs of the whole header hdr from offset off on,
// and verifies its CRC32C fields. It allocates only when there are TLVs.
func parseTLVs(hdr []byte, off int) ([]TLV, error) {
	count := 0
	for i := off; i < len(hdr); count++ {
		if len(hdr)-i < 3 {
			return nil, errV2TLV
		}
		l := int(binary.BigEndian.Uint16(hdr[i+1 : i+3]))
		if len(hdr)-i-3 < l {
			return nil, errV2TLV
		}
		if hdr[i] == TypeCRC32C && !checksumOK(hdr, i+3, l) {
			return nil, errV2Checksum
		}
		i += 3 + l
	}
	if count == 0 {
		return nil, nil
	}
	tlvs := make([]TLV, 0, count)
	for i := off; i < len(hdr); {
		l := int(binary.BigEndian.Uint16(hdr[i+1 : i+3]))
		tlvs = append(tlvs, TLV{Type: hdr[i], Value: hdr[i+3 : i+3+l : i+3+l]})
		i += 3 + l
	}
	return tlvs, nil
}

// checksumOK says whether the l-byte CRC32C value at hdr[at:] is the
// checksum of hdr with that value zeroed, as proxy-protocol.txt section
// 2.2.5 (and HAProxy) compute it: network byte order.
func checksumOK(hdr []byte, at, l int) bool {
	if l != 4 {
		return false
	}
	crc := crc32.Update(0, castagnoli, hdr[:at])
	crc = crc32.Update(crc, castagnoli, zeroCRC[:])
	crc = crc32.Update(crc, castagnoli, hdr[at+4:])
	return crc == binary.BigEndian.Uint32(hdr[at:at+4])
}
