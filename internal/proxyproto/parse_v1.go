package proxyproto

import (
	"fmt"
	"net/netip"
)

// v1Prefix starts every version 1 header.
const v1Prefix = "PROXY "

// The details of ErrMalformed for version 1.
var (
	errV1Proto   = fmt.Errorf("%w: v1 protocol is not TCP4, TCP6 or UNKNOWN", ErrMalformed)
	errV1TooLong = fmt.Errorf("%w: v1 line without CRLF in %d bytes", ErrMalformed, MaxV1)
	errV1Addr    = fmt.Errorf("%w: v1 address not of the declared family", ErrMalformed)
	errV1Port    = fmt.Errorf("%w: v1 port not decimal 0-65535 without leading zeros", ErrMalformed)
	errV1CRLF    = fmt.Errorf("%w: v1 line not ended by CRLF", ErrMalformed)
)

// parseV1 parses a version 1 header (proxy-protocol.txt section 2.1):
//
//	PROXY TCP4 <src> <dst> <sport> <dport>\r\n
//	PROXY TCP6 <src> <dst> <sport> <dport>\r\n
//	PROXY UNKNOWN[ <anything but CRLF>]\r\n
//
// Strictly: single spaces, an address of the declared family (dotted quad
// for TCP4, IPv6 text for TCP6, no zone), decimal ports without leading
// zeros, CRLF, all within MaxV1 bytes.
func parseV1(buf []byte) (Inbound, int, error) {
	k := min(len(buf), len(v1Prefix))
	if string(buf[:k]) != v1Prefix[:k] {
		return Inbound{}, 0, ErrNoProxyHeader
	}
	if k < len(v1Prefix) {
		return Inbound{}, 0, ErrShort
	}
	h, n, err := parseV1Line(buf[:min(len(buf), MaxV1)])
	if err == ErrShort && len(buf) >= MaxV1 {
		err = errV1TooLong
	}
	return h, n, err
}

// parseV1Line parses b, which starts with v1Prefix; ErrShort when b ends
// before the CRLF.
func parseV1Line(b []byte) (Inbound, int, error) {
	const tcp4, tcp6, unknown = "TCP4 ", "TCP6 ", "UNKNOWN"
	i := len(v1Prefix)
	is6 := false
	switch r := b[i:]; {
	case hasPrefix(r, tcp4):
	case hasPrefix(r, tcp6):
		is6 = true
	case hasPrefix(r, unknown):
		return parseV1Unknown(b, i+len(unknown))
	case prefixOf(r, tcp4) || prefixOf(r, tcp6) || prefixOf(r, unknown):
		return Inbound{}, 0, ErrShort
	default:
		return Inbound{}, 0, errV1Proto
	}
	i += len(tcp4)
	src, i, err := v1Addr(b, i, is6)
	if err != nil {
		return Inbound{}, 0, err
	}
	dst, i, err := v1Addr(b, i, is6)
	if err != nil {
		return Inbound{}, 0, err
	}
	sport, i, err := v1Port(b, i, ' ')
	if err != nil {
		return Inbound{}, 0, err
	}
	dport, i, err := v1Port(b, i, '\r')
	if err != nil {
		return Inbound{}, 0, err
	}
	if i == len(b) {
		return Inbound{}, 0, ErrShort
	}
	if b[i] != '\n' {
		return Inbound{}, 0, errV1CRLF
	}
	return Inbound{Version: 1, Src: netip.AddrPortFrom(src, sport), Dst: netip.AddrPortFrom(dst, dport)}, i + 1, nil
}

// hasPrefix says whether b starts with word.
func hasPrefix(b []byte, word string) bool {
	return len(b) >= len(word) && string(b[:len(word)]) == word
}

// prefixOf says whether b is a proper prefix of word.
func prefixOf(b []byte, word string) bool {
	return len(b) < len(word) && string(b) == word[:len(b)]
}

// parseV1Unknown parses what follows "PROXY UNKNOWN" at b[i:]: CRLF, or a
// space and anything up to the first CRLF, which the receiver ignores.
func parseV1Unknown(b []byte, i int) (Inbound, int, error) {
	if i == len(b) {
		return Inbound{}, 0, ErrShort
	}
	switch b[i] {
	case ' ':
		for j := i + 1; j < len(b); j++ {
			if b[j] == '\r' && j+1 < len(b) && b[j+1] == '\n' {
				return Inbound{Version: 1, Local: true}, j + 2, nil
			}
		}
		return Inbound{}, 0, ErrShort
	case '\r':
		if i+1 == len(b) {
			return Inbound{}, 0, ErrShort
		}
		if b[i+1] == '\n' {
			return Inbound{Version: 1, Local: true}, i + 2, nil
		}
		return Inbound{}, 0, errV1CRLF
	}
	return Inbound{}, 0, errV1Proto
}

// v1Addr parses the address at b[i:] and the space after it, and returns
// the index after that space. An incomplete IPv4 address is checked as far
// as it goes, an incomplete IPv6 one only for its characters and length.
func v1Addr(b []byte, i int, is6 bool) (netip.Addr, int, error) {
	if !is6 {
		var p ipv4Parser
		for j := i; j < len(b); j++ {
			if b[j] == ' ' {
				var ip [4]byte
				if !p.end(&ip) {
					return netip.Addr{}, 0, errV1Addr
				}
				return netip.AddrFrom4(ip), j + 1, nil
			}
			if !p.step(b[j]) {
				return netip.Addr{}, 0, errV1Addr
			}
		}
		return netip.Addr{}, 0, ErrShort
	}
	const maxLen = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")
	j := i
	for ; j < len(b) && b[j] != ' '; j++ {
		if _, hex := unhex(b[j]); !hex && b[j] != ':' && b[j] != '.' || j-i == maxLen {
			return netip.Addr{}, 0, errV1Addr
		}
	}
	if j == len(b) {
		return netip.Addr{}, 0, ErrShort
	}
	a, ok := parseIPv6(b[i:j])
	if !ok {
		return netip.Addr{}, 0, errV1Addr
	}
	return a, j + 1, nil
}

// v1Port parses the port at b[i:] and the byte end after it, and returns
// the index after end. An incomplete port is checked as far as it goes.
func v1Port(b []byte, i int, end byte) (uint16, int, error) {
	v := 0
	j := i
	for ; j < len(b) && b[j] != end; j++ {
		c := b[j]
		if c < '0' || c > '9' || j > i && b[i] == '0' {
			return 0, 0, errV1Port
		}
		if v = v*10 + int(c-'0'); v > 0xFFFF {
			return 0, 0, errV1Port
		}
	}
	if j == len(b) {
		return 0, 0, ErrShort
	}
	if j == i {
		return 0, 0, errV1Port
	}
	return uint16(v), j + 1, nil
}
