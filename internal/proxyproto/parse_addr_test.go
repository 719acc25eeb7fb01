package proxyproto

import (
	"net/netip"
	"testing"
)

// FuzzParseAddrText checks parseIPv4 and parseIPv6 against
// netip.ParseAddr, without zones. Its seeds are the tricky cases.
func FuzzParseAddrText(f *testing.F) {
	for _, s := range []string{
		"", ".", ":", "::", ":::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3", "12345::", "0000:0::", "fFfF::", "g::", "1:",
		":1", "1:::2", "::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "1:2:3:4:5:1.2.3.4",
		"::1.2.3.4", "::1.2.3", "::1.2.3.04", "::1.2.3.4:1", "1.2.3.4", "0.0.0.0", "255.255.255.255",
		"256.1.1.1", "01.1.1.1", "1.1.1.01", "1.1.1", "1.1.1.1.", ".1.1.1", "1..1.1", "1.1.1.1.1",
		"fe80::1%eth0", "::%", "1.2.3.4%x", "[::1]", " ::1", "::1 ", "2001:db8::", "::ffff:0:0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := netip.ParseAddr(s)
		ok := err == nil && want.Zone() == ""
		if got, ok4 := parseIPv4([]byte(s)); ok4 != (ok && want.Is4()) || ok4 && got != want {
			t.Errorf("parseIPv4(%q) = %v, %v; netip: %v, %v", s, got, ok4, want, err)
		}
		if got, ok6 := parseIPv6([]byte(s)); ok6 != (ok && want.Is6()) || ok6 && got != want {
			t.Errorf("parseIPv6(%q) = %v, %v; netip: %v, %v", s, got, ok6, want, err)
		}
	})
}
