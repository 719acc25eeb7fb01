package proxyproto

import "net/netip"

// parseIPv4 parses a dotted quad without leading zeros, as
// netip.ParseAddr does, but from bytes and without allocating.
func parseIPv4(s []byte) (netip.Addr, bool) {
	var ip [4]byte
	if !parseIPv4Fields(s, &ip) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

func parseIPv4Fields(s []byte, ip *[4]byte) bool {
	var p ipv4Parser
	for _, c := range s {
		if !p.step(c) {
			return false
		}
	}
	return p.end(ip)
}

// ipv4Parser parses a dotted quad byte by byte, so that a prefix is
// checked as far as it goes.
type ipv4Parser struct {
	ip            [3]byte // the fields before the current one
	field, digits int
	v             int // the current field's value
}

// step takes the next byte of the text and says whether the text is still
// the start of an address.
func (p *ipv4Parser) step(c byte) bool {
	switch {
	case c >= '0' && c <= '9':
		if p.digits == 1 && p.v == 0 {
			return false // leading zero
		}
		p.v = p.v*10 + int(c-'0')
		p.digits++
		return p.v <= 255
	case c == '.':
		if p.digits == 0 || p.field == 3 {
			return false
		}
		p.ip[p.field] = byte(p.v)
		p.field, p.digits, p.v = p.field+1, 0, 0
		return true
	}
	return false
}

// end says whether the text taken is a whole address, and stores it in ip.
func (p *ipv4Parser) end(ip *[4]byte) bool {
	if p.field != 3 || p.digits == 0 {
		return false
	}
	*ip = [4]byte{p.ip[0], p.ip[1], p.ip[2], byte(p.v)}
	return true
}

// parseIPv6 parses IPv6 text without a zone (RFC 4291 section 2.2, an
// embedded IPv4 address included), as netip.ParseAddr does, but from bytes
// and without allocating.
func parseIPv6(s []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // where "::" stands in ip
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		if s = s[2:]; len(s) == 0 {
			return netip.IPv6Unspecified(), true
		}
	}
	i := 0
	for i < 16 {
		off, acc := 0, 0
		for ; off < len(s); off++ {
			d, ok := unhex(s[off])
			if !ok {
				break
			}
			if off > 3 {
				return netip.Addr{}, false // more than 4 digits in a group
			}
			acc = acc<<4 | d
		}
		if off == 0 {
			return netip.Addr{}, false
		}
		if off < len(s) && s[off] == '.' {
			// The embedded IPv4 address ends the text, in the last 4 bytes.
			if ellipsis < 0 && i != 12 || i+4 > 16 {
				return netip.Addr{}, false
			}
			var v4 [4]byte
			if !parseIPv4Fields(s, &v4) {
				return netip.Addr{}, false
			}
			copy(ip[i:], v4[:])
			i += 4
			s = nil
			break
		}
		ip[i], ip[i+1] = byte(acc>>8), byte(acc)
		i += 2
		if s = s[off:]; len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, false
		}
		if s = s[1:]; s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false // a second "::"
			}
			ellipsis = i
			if s = s[1:]; len(s) == 0 {
				break
			}
		}
	}
	if len(s) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		for j := i - 1; j >= ellipsis; j-- {
			ip[j+n] = ip[j]
		}
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false // "::" must stand for at least one group
	}
	return netip.AddrFrom16(ip), true
}

func unhex(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}
