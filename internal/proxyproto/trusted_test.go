package proxyproto

import (
	"net/netip"
	"strings"
	"testing"
)

func TestTrusted(t *testing.T) {
	tr, err := ParseTrusted([]string{"10.0.0.0/8", "192.0.2.7", "::1/128", "2001:db8::/32", "unix",
		"::ffff:172.16.0.0/108", "198.51.100.77/24", "fd00::5"})
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Unix() {
		t.Error("unix not trusted")
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.0.0.0", true}, {"10.255.255.255", true}, {"11.0.0.1", false}, {"9.255.255.255", false},
		{"::ffff:10.1.2.3", true}, {"::ffff:11.1.2.3", false},
		{"192.0.2.7", true}, {"192.0.2.8", false}, {"::ffff:192.0.2.7", true},
		{"::1", true}, {"::2", false}, {"127.0.0.1", false},
		{"2001:db8:1::1", true}, {"2001:db9::1", false}, {"2001:db8::1%eth0", true},
		{"172.16.0.1", true}, {"172.31.255.255", true}, {"172.32.0.1", false},
		{"198.51.100.1", true}, {"198.51.101.1", false},
		{"fd00::5", true}, {"fd00::6", false},
		{"::a00:1", false}, // 10.0.0.1 as IPv4-compatible, not IPv4-mapped
	} {
		if got := tr.Contains(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if tr.Contains(netip.Addr{}) {
		t.Error("the zero Addr is trusted")
	}

	all4, err := ParseTrusted([]string{"0.0.0.0/0"})
	if err != nil {
		t.Fatal(err)
	}
	if all4.Unix() || !all4.Contains(netip.MustParseAddr("203.0.113.9")) || !all4.Contains(netip.MustParseAddr("::ffff:203.0.113.9")) || all4.Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Error("0.0.0.0/0: wrong set")
	}
	for _, tr := range []*Trusted{nil, {}} {
		if tr.Unix() || tr.Contains(netip.MustParseAddr("10.0.0.1")) {
			t.Errorf("%#v trusts something", tr)
		}
	}
	if none, err := ParseTrusted(nil); err != nil || none.Unix() || none.Contains(netip.MustParseAddr("::")) {
		t.Errorf("no entries: %v, %v", none, err)
	}
}

func TestParseTrustedErrors(t *testing.T) {
	for _, bad := range []string{"", "10.0.0.0/33", "10.0.0.256", "10.0.0.0/", "/8", "localhost", "fe80::1%eth0",
		"fe80::%eth0/64", "unix:", "UNIX", "::ffff:0:0/80", "10.0.0.0/8 ", " 10.0.0.1", "10.0.0.0/8,10.1.0.0/16"} {
		_, err := ParseTrusted([]string{"192.0.2.0/24", bad})
		if err == nil {
			t.Errorf("%q accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("%q: error %q does not name it", bad, err)
		}
	}
}
