package keysrc

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := map[string]Source{
		"":                   {Kind: Frame},
		"frame":              {Kind: Frame},
		"sni":                {Kind: SNI},
		"client-ip":          {Kind: ClientIP, Bits4: 32, Bits6: 128},
		"client-ip/24":       {Kind: ClientIP, Bits4: 24, Bits6: 128},
		"client-ip/24,64":    {Kind: ClientIP, Bits4: 24, Bits6: 64},
		"http-header:X-Room": {Kind: HTTPHeader, Name: "X-Room"},
		"http-cookie:sid":    {Kind: HTTPCookie, Name: "sid"},
		"http-path:2":        {Kind: HTTPPath, Segment: 2},
		"http-query:room":    {Kind: HTTPQuery, Name: "room"},
	}
	for spec, want := range good {
		got, err := Parse(spec)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", spec, got, err, want)
			continue
		}
		if spec != "" {
			if again, err := Parse(got.String()); err != nil || again != got {
				t.Errorf("Parse(%q.String() = %q) = %+v, %v", spec, got.String(), again, err)
			}
		}
	}
	for _, spec := range []string{"http-cookie:" + strings.Repeat("c", MaxNameLen), "http-query:" + strings.Repeat("q", MaxNameLen)} {
		if _, err := Parse(spec); err != nil {
			t.Errorf("a name of MaxNameLen bytes: %v", err)
		}
	}
	for _, spec := range []string{"sni:x", "ip", "client-ip/33", "client-ip/24,129", "client-ip/x",
		"http-header", "http-header:", "http-header:a b", "http-cookie:a;b", "http-path:0", "http-path:x", "http-query:", "HTTP-PATH:1",
		"http-header:" + strings.Repeat("h", MaxNameLen+1), "http-query:" + strings.Repeat("q", MaxNameLen+1)} {
		if s, err := Parse(spec); !errors.Is(err, ErrSpec) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrSpec", spec, s, err)
		}
	}
}

func TestClientIPKey(t *testing.T) {
	cases := []struct {
		spec, addr, key string
	}{
		{"client-ip", "192.0.2.7", "192.0.2.7"},
		{"client-ip", "::ffff:192.0.2.7", "192.0.2.7"},
		{"client-ip", "2001:DB8:0:0::1", "2001:db8::1"},
		{"client-ip", "fe80::1%eth0", "fe80::1"},
		{"client-ip/24", "192.0.2.7", "192.0.2.0/24"},
		{"client-ip/24", "2001:db8::1", "2001:db8::1"},
		{"client-ip/24,64", "2001:db8::1:2:3:4", "2001:db8::/64"},
		{"client-ip/0", "192.0.2.7", "0.0.0.0/0"},
	}
	for _, c := range cases {
		s, err := Parse(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(s.ClientIPKey(netip.MustParseAddr(c.addr))); got != c.key {
			t.Errorf("%s of %s = %q, want %q", c.spec, c.addr, got, c.key)
		}
	}
	if k := (Source{Kind: ClientIP, Bits4: 32, Bits6: 128}).ClientIPKey(netip.Addr{}); k != nil {
		t.Errorf("key of no address = %q, want nil", k)
	}
}
