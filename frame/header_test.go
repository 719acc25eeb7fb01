package frame

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

var headerCases = []*StreamHeader{
	{Key: []byte("room1"), Client: Addr{"tcp", "192.0.2.1:4000"}, Local: Addr{"tcp", "198.51.100.7:7000"}},
	{Key: []byte("k"), Client: Addr{"tcp6", "[2001:db8::1]:4000"}, Local: Addr{"tcp6", "[2001:db8::2]:443"},
		TLS:   &TLSInfo{Version: tls.VersionTLS13, ServerName: "chat.example", ALPN: "h2", PeerSubject: "CN=alice,O=Example"},
		Early: []byte("GET / HTTP/1.1\r\n")},
	{Direct: true, Shard: 3, Client: Addr{"unix", "@"}, Local: Addr{"unix", "/run/sub.sock"}, TLS: &TLSInfo{Version: tls.VersionTLS12}},
	{Direct: true, Shard: 0xffffffff},
	{Key: bytes.Repeat([]byte{0}, DefaultMaxKey), Early: bytes.Repeat([]byte("e"), DefaultMaxEarly),
		Client: Addr{strings.Repeat("n", MaxAddrLen), strings.Repeat("a", MaxAddrLen)},
		TLS: &TLSInfo{ServerName: strings.Repeat("s", MaxServerName), ALPN: strings.Repeat("p", MaxALPN),
			PeerSubject: strings.Repeat("c", MaxPeerSubject)}},
}

func TestStreamHeaderRoundTrip(t *testing.T) {
	for i, h := range headerCases {
		b, err := AppendStreamHeader([]byte("x"), h)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if len(b)-1-headerPrefix > (HeaderLimits{}).MaxBody() {
			t.Fatalf("case %d: body larger than MaxBody", i)
		}
		r := bytes.NewReader(append(b[1:], "payload"...))
		got, err := ReadStreamHeader(r, HeaderLimits{})
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, h) {
			t.Errorf("case %d: got %+v, want %+v", i, got, h)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "payload" {
			t.Errorf("case %d: read past the header, left %q", i, rest)
		}
		// Cut short anywhere: an error, never a header.
		for _, cut := range []int{1, 5, 6, 7, len(b) - 2} {
			if cut >= len(b)-1 {
				continue
			}
			_, err := ReadStreamHeader(bytes.NewReader(b[1:1+cut]), HeaderLimits{})
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("case %d cut at %d: %v", i, cut, err)
			}
		}
	}
	if _, err := ReadStreamHeader(bytes.NewReader(nil), HeaderLimits{}); err != io.EOF {
		t.Errorf("empty stream: %v", err)
	}
}

func TestStreamHeaderErrors(t *testing.T) {
	good, _ := AppendStreamHeader(nil, headerCases[1])
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte{}, good...)) }
	for _, c := range []struct {
		name string
		in   []byte
		lim  HeaderLimits
		err  error
	}{
		{"version 0", mut(func(b []byte) []byte { b[0] = 0; return b }), HeaderLimits{}, ErrBadVersion},
		{"version 2", mut(func(b []byte) []byte { b[0] = 2; return b }), HeaderLimits{}, ErrBadVersion},
		{"unknown flag", mut(func(b []byte) []byte { b[1] |= 0x80; return b }), HeaderLimits{}, ErrBadHeader},
		{"huge length", mut(func(b []byte) []byte { b[2] = 0xff; return b }), HeaderLimits{}, ErrHeaderTooLarge},
		{"trailing byte", mut(func(b []byte) []byte { b[5]++; return append(b, 0) }), HeaderLimits{}, ErrBadHeader},
		{"short body", mut(func(b []byte) []byte { b[5]--; return b[:len(b)-1] }), HeaderLimits{}, ErrBadHeader},
		{"zero limits mean defaults", good, HeaderLimits{}, nil},
		{"early over limit", good, HeaderLimits{MaxEarly: 15}, ErrHeaderTooLarge},
		{"empty key", []byte{1, 0, 0, 0, 0, 2, 0, 0}, HeaderLimits{}, ErrBadHeader},
		{"key over reader limit", []byte{1, 0, 0, 0, 0, 4, 0, 2, 'a', 'b'}, HeaderLimits{MaxKey: 1}, ErrHeaderTooLarge},
		{"bad limits", good, HeaderLimits{MaxKey: -1}, ErrBadMaxKey},
	} {
		_, err := ReadStreamHeader(bytes.NewReader(c.in), c.lim)
		if c.err == nil {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.err) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.err)
		}
	}
}

func TestAppendStreamHeaderRejects(t *testing.T) {
	for _, h := range []*StreamHeader{
		{},
		{Key: make([]byte, MaxKeyLimit+1)},
		{Direct: true, Key: []byte("k")},
		{Key: []byte("k"), Client: Addr{Addr: strings.Repeat("a", MaxAddrLen+1)}},
		{Key: []byte("k"), TLS: &TLSInfo{PeerSubject: strings.Repeat("c", MaxPeerSubject+1)}},
		{Key: []byte("k"), Early: make([]byte, MaxEarlyLimit+1)},
	} {
		b, err := AppendStreamHeader([]byte("x"), h)
		if !errors.Is(err, ErrBadHeader) || string(b) != "x" {
			t.Errorf("AppendStreamHeader(%.40v) = %d bytes, %v", h, len(b), err)
		}
	}
}
