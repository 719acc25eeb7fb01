package proxyproto

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Trusted is a set of networks allowed to send PROXY headers
// (--trusted-proxy CIDR, repeatable). The zero value and nil trust
// nothing.
type Trusted struct {
	prefixes []netip.Prefix // masked; IPv4 as IPv4, never IPv4-mapped
	unix     bool
}

// ParseTrusted parses --trusted-proxy entries: a network ("10.0.0.0/8",
// "2001:db8::/32"; host bits are ignored), a single address ("192.0.2.7",
// "::1"), or "unix" for clients of Unix-socket listeners, which have no
// IP address. An IPv4-mapped IPv6 network ("::ffff:10.0.0.0/104") stands
// for the IPv4 network it maps. Zones are refused: Contains ignores them.
// An error names the bad entry.
func ParseTrusted(cidrs []string) (*Trusted, error) {
	t := &Trusted{}
	for _, s := range cidrs {
		p, err := parseTrustedEntry(s)
		if err != nil {
			return nil, fmt.Errorf("proxyproto: trusted proxy %q: %w", s, err)
		}
		if !p.IsValid() {
			t.unix = true
			continue
		}
		t.prefixes = append(t.prefixes, p)
	}
	return t, nil
}

// parseTrustedEntry parses one entry; the zero Prefix stands for "unix".
func parseTrustedEntry(s string) (netip.Prefix, error) {
	if s == "unix" {
		return netip.Prefix{}, nil
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("neither a network, an address nor \"unix\": %w", err)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, errors.New("an address with a zone")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, errors.New("an IPv4-mapped network shorter than /96")
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// Contains says whether addr is in a trusted network. An IPv4-mapped IPv6
// address is taken as the IPv4 address it maps, and a zone is ignored.
func (t *Trusted) Contains(addr netip.Addr) bool {
	if t == nil {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range t.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Unix says whether clients of Unix-socket listeners are trusted.
func (t *Trusted) Unix() bool {
	return t != nil && t.unix
}
