package keysrc

import (
	"net/netip"
)

// ClientIPKey returns the key of a connection from addr for a ClientIP
// source: the address in canonical text form ("192.0.2.7", "2001:db8::1"),
// or, with a prefix shorter than the whole address, its network
// ("192.0.2.0/24"). An IPv4 address mapped into IPv6 counts as IPv4, and
// an IPv6 zone is dropped. It returns nil for an invalid address (a Unix
// socket's client has none).
func (s Source) ClientIPKey(addr netip.Addr) []byte {
	if !addr.IsValid() {
		return nil
	}
	addr = addr.Unmap().WithZone("")
	bits := s.Bits6
	if addr.Is4() {
		bits = s.Bits4
	}
	if bits >= addr.BitLen() {
		return addr.AppendTo(nil)
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return nil
	}
	return p.AppendTo(nil)
}
