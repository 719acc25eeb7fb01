package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// v2 builds a version 2 header whose length field is len(body).
func v2(verCmd, fam byte, body ...byte) []byte {
	return v2Len(verCmd, fam, len(body), body...)
}

// v2Len builds a version 2 header whose length field is length, which
// may lie about body.
func v2Len(verCmd, fam byte, length int, body ...byte) []byte {
	b := append(Signature[:], verCmd, fam, byte(length>>8), byte(length))
	return append(b, body...)
}

// tcp4Body is the address block 192.0.2.1:4000 -> 198.51.100.2:443.
var tcp4Body = []byte{192, 0, 2, 1, 198, 51, 100, 2, 0x0f, 0xa0, 0x01, 0xbb}

// tcp6Body is the address block [2001:db8::1]:4000 -> [2001:db8::2]:443.
var tcp6Body = func() []byte {
	b := netip.MustParseAddr("2001:db8::1").AsSlice()
	b = append(b, netip.MustParseAddr("2001:db8::2").AsSlice()...)
	return append(b, 0x0f, 0xa0, 0x01, 0xbb)
}()

// withCRC appends a PP2_TYPE_CRC32C TLV to the version 2 header h and
// fixes its length and checksum, as a sender does.
func withCRC(h []byte) []byte {
	h = append(bytes.Clone(h), TypeCRC32C, 0, 4, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(h[14:], uint16(len(h)-16))
	sum := crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(h[len(h)-4:], sum)
	return h
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

const (
	ff6   = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	long6 = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
)

type validCase struct {
	name     string
	in       []byte
	version  int
	local    bool
	src, dst string // netip.AddrPort text; "" for the zero AddrPort
	tlvs     []TLV
}

func validCases() []validCase {
	return []validCase{
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"), 1, false, "192.0.2.1:56324", "198.51.100.2:443", nil},
		{"v1 tcp4 ports 0", []byte("PROXY TCP4 0.0.0.0 255.255.255.255 0 0\r\n"), 1, false, "0.0.0.0:0", "255.255.255.255:0", nil},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:DB8::2 1 65535\r\n"), 1, false, "[2001:db8::1]:1", "[2001:db8::2]:65535", nil},
		{"v1 tcp6 mapped", []byte("PROXY TCP6 ::ffff:192.0.2.1 :: 10 20\r\n"), 1, false, "[::ffff:192.0.2.1]:10", "[::]:20", nil},
		{"v1 tcp6 longest", []byte("PROXY TCP6 " + ff6 + " " + ff6 + " 65535 65535\r\n"), 1, false, "[" + ff6 + "]:65535", "[" + ff6 + "]:65535", nil},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), 1, true, "", "", nil},
		{"v1 unknown longest", []byte("PROXY UNKNOWN " + ff6 + " " + ff6 + " 65535 65535\r\n"), 1, true, "", "", nil},
		{"v1 unknown anything", []byte("PROXY UNKNOWN \x00 \n \r x\r\n"), 1, true, "", "", nil},
		{"v2 tcp4", v2(0x21, 0x11, tcp4Body...), 2, false, "192.0.2.1:4000", "198.51.100.2:443", nil},
		{"v2 tcp6", v2(0x21, 0x21, tcp6Body...), 2, false, "[2001:db8::1]:4000", "[2001:db8::2]:443", nil},
		{"v2 tcp4 tlvs", v2(0x21, 0x11, cat(tcp4Body, []byte{0xe0, 0, 2, 'h', 'i', 0x04, 0, 0})...), 2, false, "192.0.2.1:4000", "198.51.100.2:443",
			[]TLV{{0xe0, []byte("hi")}, {0x04, []byte{}}}},
		{"v2 tcp4 crc", withCRC(v2(0x21, 0x11, tcp4Body...)), 2, false, "192.0.2.1:4000", "198.51.100.2:443", nil},
		{"v2 tcp6 extra address bytes", v2(0x21, 0x21, cat(tcp6Body, []byte{0xe1, 0, 0})...), 2, false, "[2001:db8::1]:4000", "[2001:db8::2]:443", []TLV{{0xe1, []byte{}}}},
		{"v2 local", v2(0x20, 0x00), 2, true, "", "", nil},
		{"v2 local ignores family and body", v2(0x20, 0xff, 1, 2, 3), 2, true, "", "", nil},
		{"v2 local ignores addresses", v2(0x20, 0x11, tcp4Body...), 2, true, "", "", nil},
		{"v2 unspec", v2(0x21, 0x00), 2, true, "", "", nil},
		{"v2 unspec tlvs", v2(0x21, 0x00, 0xe0, 0, 1, 'k'), 2, true, "", "", []TLV{{0xe0, []byte("k")}}},
		{"v2 unix stream", v2(0x21, 0x31, make([]byte, 216)...), 2, true, "", "", nil},
		{"v2 unix dgram", v2(0x21, 0x32, make([]byte, 216)...), 2, true, "", "", nil},
		{"v2 longest", v2(0x21, 0x00, cat([]byte{0xe2, 0x0f, 0xfd}, make([]byte, MaxInboundLength-3))...), 2, true, "", "",
			[]TLV{{0xe2, make([]byte, MaxInboundLength-3)}}},
	}
}

func checkInbound(t *testing.T, name string, got Inbound, c validCase) {
	t.Helper()
	if got.Version != c.version || got.Local != c.local {
		t.Errorf("%s: version %d local %v, want %d %v", name, got.Version, got.Local, c.version, c.local)
	}
	for _, a := range []struct {
		got  netip.AddrPort
		want string
	}{{got.Src, c.src}, {got.Dst, c.dst}} {
		if a.want == "" {
			if a.got.IsValid() {
				t.Errorf("%s: address %v, want none", name, a.got)
			}
		} else if a.got != netip.MustParseAddrPort(a.want) {
			t.Errorf("%s: address %v, want %s", name, a.got, a.want)
		}
	}
	if c.tlvs == nil {
		// A checksum is the only TLV a case may leave unlisted.
		for _, v := range got.TLVs {
			if v.Type != TypeCRC32C {
				t.Errorf("%s: unexpected TLV %+v", name, v)
			}
		}
		return
	}
	if len(got.TLVs) != len(c.tlvs) {
		t.Fatalf("%s: %d TLVs, want %d", name, len(got.TLVs), len(c.tlvs))
	}
	for i := range c.tlvs {
		if cap(got.TLVs[i].Value) != len(got.TLVs[i].Value) {
			t.Errorf("%s: TLV %d: appending to its value would overwrite the buffer", name, i)
		}
		if got.TLVs[i].Type != c.tlvs[i].Type || !bytes.Equal(got.TLVs[i].Value, c.tlvs[i].Value) {
			t.Errorf("%s: TLV %d is %+v, want %+v", name, i, got.TLVs[i], c.tlvs[i])
		}
	}
}

func TestParseInboundValid(t *testing.T) {
	for _, c := range validCases() {
		// Alone, and followed by the client's first bytes.
		for _, tail := range []string{"", "GET / HTTP/1.1\r\n", "\r\n\r\n\x00\r\nQUIT\n"} {
			got, n, err := ParseInbound(append(bytes.Clone(c.in), tail...))
			if err != nil || n != len(c.in) {
				t.Errorf("%s + %q: n %d, err %v; want %d, nil", c.name, tail, n, err, len(c.in))
				continue
			}
			checkInbound(t, c.name, got, c)
		}
	}
}

// TestParseInboundPrefixes: every proper prefix of a valid header, the
// empty one included, asks for more bytes.
func TestParseInboundPrefixes(t *testing.T) {
	for _, c := range validCases() {
		for k := range len(c.in) {
			if _, n, err := ParseInbound(c.in[:k]); err != ErrShort || n != 0 {
				t.Fatalf("%s: %d of %d bytes: n %d, err %v; want ErrShort", c.name, k, len(c.in), n, err)
			}
		}
	}
}

func TestParseInboundErrors(t *testing.T) {
	tcp4 := v2(0x21, 0x11, tcp4Body...)
	badCRC := withCRC(tcp4)
	badCRC[len(badCRC)-1] ^= 1
	crc3 := v2(0x21, 0x11, cat(tcp4Body, []byte{TypeCRC32C, 0, 3, 0, 0, 0})...)
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		// Neither version, decided on the first bytes that differ.
		{"http", "GET / HTTP/1.1\r\n", ErrNoProxyHeader},
		{"one byte", "G", ErrNoProxyHeader},
		{"tls", "\x16\x03\x01\x02\x00", ErrNoProxyHeader},
		{"PUT", "PUT", ErrNoProxyHeader},
		{"PROXX", "PROXX", ErrNoProxyHeader},
		{"PROXY without space", "PROXY\r\n", ErrNoProxyHeader},
		{"lowercase", "proxy TCP4", ErrNoProxyHeader},
		{"v2 signature byte 0", "\x0d\x0b", ErrNoProxyHeader},
		{"blank lines", "\r\n\r\n\r\n", ErrNoProxyHeader},

		// Version 1.
		{"v1 bad protocol", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", ErrMalformed},
		{"v1 lowercase protocol", "PROXY tcp4", ErrMalformed},
		{"v1 udp", "PROXY UDP4 ", ErrMalformed},
		{"v1 double space after PROXY", "PROXY  TCP4", ErrMalformed},
		{"v1 TCP4 without space", "PROXY TCP4\r\n", ErrMalformed},
		{"v1 UNKNOWN glued", "PROXY UNKNOWNX\r\n", ErrMalformed},
		{"v1 UNKNOWN bad CR", "PROXY UNKNOWN\rX", ErrMalformed},
		{"v1 double space", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", ErrMalformed},
		{"v1 tab", "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", ErrMalformed},
		{"v1 LF only", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", ErrMalformed},
		{"v1 CR CR LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", ErrMalformed},
		{"v1 CR without LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", ErrMalformed},
		{"v1 trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", ErrMalformed},
		{"v1 missing port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", ErrMalformed},
		{"v1 extra field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", ErrMalformed},
		{"v1 missing address", "PROXY TCP4 1.2.3.4 1 2\r\n", ErrMalformed},
		{"v1 tcp4 with ipv6", "PROXY TCP4 ::1 ::1 1 2\r\n", ErrMalformed},
		{"v1 tcp4 with mapped", "PROXY TCP4 ::ffff:1.2.3.4 1.2.3.4 1 2\r\n", ErrMalformed},
		{"v1 tcp6 with ipv4", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", ErrMalformed},
		{"v1 mixed families", "PROXY TCP6 ::1 5.6.7.8 1 2\r\n", ErrMalformed},
		{"v1 octet > 255", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", ErrMalformed},
		{"v1 octet > 255, early", "PROXY TCP4 1.2.3.256", ErrMalformed},
		{"v1 leading zero, early", "PROXY TCP4 1.02", ErrMalformed},
		{"v1 fifth octet, early", "PROXY TCP4 1.2.3.4.", ErrMalformed},
		{"v1 leading zero octet", "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", ErrMalformed},
		{"v1 three octets", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", ErrMalformed},
		{"v1 five octets", "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", ErrMalformed},
		{"v1 empty octet", "PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", ErrMalformed},
		{"v1 hostname", "PROXY TCP4 localhost 5.6.7.8 1 2\r\n", ErrMalformed},
		{"v1 ipv4 too long", "PROXY TCP4 1111111111111111", ErrMalformed},
		{"v1 zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", ErrMalformed},
		{"v1 two ellipses", "PROXY TCP6 1::2::3 ::1 1 2\r\n", ErrMalformed},
		{"v1 ipv6 group of 5", "PROXY TCP6 12345::1 ::1 1 2\r\n", ErrMalformed},
		{"v1 ipv6 too few groups", "PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n", ErrMalformed},
		{"v1 ipv6 brackets", "PROXY TCP6 [::1] ::1 1 2\r\n", ErrMalformed},
		{"v1 port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", ErrMalformed},
		{"v1 port 99999 early", "PROXY TCP4 1.2.3.4 5.6.7.8 99999", ErrMalformed},
		{"v1 port leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", ErrMalformed},
		{"v1 port 00", "PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", ErrMalformed},
		{"v1 port sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", ErrMalformed},
		{"v1 port negative", "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", ErrMalformed},
		{"v1 port hex", "PROXY TCP4 1.2.3.4 5.6.7.8 0x10 2\r\n", ErrMalformed},
		{"v1 port empty", "PROXY TCP4 1.2.3.4 5.6.7.8  2\r\n", ErrMalformed},
		{"v1 unknown 108 bytes", "PROXY UNKNOWN " + strings.Repeat("x", MaxV1-len("PROXY UNKNOWN ")-1) + "\r\n", ErrMalformed},
		{"v1 unknown 107 bytes without CRLF", "PROXY UNKNOWN " + strings.Repeat("x", MaxV1-len("PROXY UNKNOWN ")), ErrMalformed},
		{"v1 CR at byte 107", "PROXY UNKNOWN " + strings.Repeat("x", MaxV1-len("PROXY UNKNOWN ")-1) + "\r", ErrMalformed},
		{"v1 tcp6 over 107 bytes", "PROXY TCP6 " + long6 + " " + long6 + " 65535 65535\r\n", ErrMalformed},

		// Version 2.
		{"v2 version 1", string(v2(0x11, 0x11, tcp4Body...)), ErrVersion},
		{"v2 version 3", string(v2(0x31, 0x11, tcp4Body...)), ErrVersion},
		{"v2 version 0, early", string(Signature[:]) + "\x01", ErrVersion},
		{"v2 command 2", string(v2(0x22, 0x11, tcp4Body...)), ErrVersion},
		{"v2 command 15, early", string(Signature[:]) + "\x2f", ErrVersion},
		{"v2 udp4", string(v2(0x21, 0x12, tcp4Body...)), ErrVersion},
		{"v2 udp6, early", string(Signature[:]) + "\x21\x22", ErrVersion},
		{"v2 family 0x41", string(v2(0x21, 0x41, tcp4Body...)), ErrMalformed},
		{"v2 protocol 0x13", string(v2(0x21, 0x13, tcp4Body...)), ErrMalformed},
		{"v2 unspec stream", string(v2(0x21, 0x01)), ErrMalformed},
		{"v2 family 0x10, early", string(Signature[:]) + "\x21\x10", ErrMalformed},
		{"v2 tcp4 length 11", string(v2Len(0x21, 0x11, 11, tcp4Body...)), ErrMalformed},
		{"v2 tcp4 length 0, early", string(v2Len(0x21, 0x11, 0)), ErrMalformed},
		{"v2 tcp6 length 35", string(v2Len(0x21, 0x21, 35, tcp6Body...)), ErrMalformed},
		{"v2 tcp6 with tcp4 block", string(v2(0x21, 0x21, tcp4Body...)), ErrMalformed},
		{"v2 unix length 215", string(v2Len(0x21, 0x31, 215)), ErrMalformed},
		{"v2 too large", string(v2Len(0x21, 0x00, MaxInboundLength+1)), ErrTooLarge},
		{"v2 too large local", string(v2Len(0x20, 0x00, 0xffff)), ErrTooLarge},
		{"v2 tlv header cut 1", string(v2(0x21, 0x11, cat(tcp4Body, []byte{0xe0})...)), ErrMalformed},
		{"v2 tlv header cut 2", string(v2(0x21, 0x11, cat(tcp4Body, []byte{0xe0, 0})...)), ErrMalformed},
		{"v2 tlv overruns", string(v2(0x21, 0x11, cat(tcp4Body, []byte{0xe0, 0, 2, 'x'})...)), ErrMalformed},
		{"v2 second tlv overruns", string(v2(0x21, 0x00, 0xe0, 0, 0, 0xe1, 0xff, 0xff, 1)), ErrMalformed},
		{"v2 crc mismatch", string(badCRC), ErrMalformed},
		{"v2 crc of 3 bytes", string(crc3), ErrMalformed},
	} {
		h, n, err := ParseInbound([]byte(tc.in))
		if !errors.Is(err, tc.want) || n != 0 || h.Version != 0 {
			t.Errorf("%s: %+v, n %d, err %v; want %v", tc.name, h, n, err, tc.want)
		}
	}
	if !errors.Is(ErrTooLarge, ErrMalformed) {
		t.Error("ErrTooLarge does not wrap ErrMalformed")
	}
}

// TestParseInboundNoHeaderEarly: "GET " and a TLS record are refused at
// their first byte, and so is every byte that starts neither version;
// "PUT" and "PROXX" only when they part from "PROXY ".
func TestParseInboundNoHeaderEarly(t *testing.T) {
	for c := range 256 {
		_, _, err := ParseInbound([]byte{byte(c)})
		want := ErrNoProxyHeader
		if c == 'P' || c == 0x0d {
			want = ErrShort
		}
		if err != want {
			t.Errorf("first byte %#x: %v, want %v", c, err, want)
		}
	}
	for i := range len(v1Prefix) {
		b := []byte(v1Prefix[:i+1])
		b[i] ^= 0x20
		if _, _, err := ParseInbound(b); err != ErrNoProxyHeader {
			t.Errorf("%q: %v, want ErrNoProxyHeader", b, err)
		}
	}
	for i := range len(Signature) {
		b := bytes.Clone(Signature[:i+1])
		b[i] ^= 0x80
		if _, _, err := ParseInbound(b); err != ErrNoProxyHeader {
			t.Errorf("%x: %v, want ErrNoProxyHeader", b, err)
		}
	}
}

// TestParseInboundEncoder parses what Header.Append writes.
func TestParseInboundEncoder(t *testing.T) {
	for i, h := range roundTripCases() {
		b, err := h.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := ParseInbound(b)
		if err != nil || n != len(b) {
			t.Fatalf("case %d: n %d, err %v; want %d", i, n, err, len(b))
		}
		src, isTCP := h.Source.(*net.TCPAddr)
		if got.Version != 2 || got.Local == isTCP {
			t.Fatalf("case %d: %+v", i, got)
		}
		if !isTCP {
			if got.Src.IsValid() || got.Dst.IsValid() {
				t.Errorf("case %d: addresses %v %v, want none", i, got.Src, got.Dst)
			}
			continue
		}
		if got.Src != unmap(src.AddrPort()) || got.Dst != unmap(h.Destination.(*net.TCPAddr).AddrPort()) {
			t.Errorf("case %d: %v -> %v, want %v -> %v", i, got.Src, got.Dst, h.Source, h.Destination)
		}
		if len(got.TLVs) != len(h.TLVs) {
			t.Fatalf("case %d: %d TLVs, want %d", i, len(got.TLVs), len(h.TLVs))
		}
		for j, v := range h.TLVs {
			if got.TLVs[j].Type != v.Type || !bytes.Equal(got.TLVs[j].Value, v.Value) {
				t.Errorf("case %d TLV %d: %+v, want %+v", i, j, got.TLVs[j], v)
			}
		}
	}
}

// TestParseInboundAllocs: no allocation but the TLV list, not even for
// a refusal.
func TestParseInboundAllocs(t *testing.T) {
	for _, c := range validCases() {
		ins := [][]byte{c.in[:len(c.in)-1]}
		if h, _, _ := ParseInbound(c.in); h.TLVs == nil {
			ins = append(ins, c.in)
		}
		for _, in := range ins {
			if a := testing.AllocsPerRun(50, func() { ParseInbound(in) }); a != 0 {
				t.Errorf("%s (%d bytes): %v allocations", c.name, len(in), a)
			}
		}
	}
	for _, in := range [][]byte{[]byte("GET /"), []byte("PROXY TCP4 1.2.3.4 5.6.7.8 99999"), []byte("PROXY TCP6 1::2::3 "), v2(0x11, 0x11)} {
		if a := testing.AllocsPerRun(50, func() { ParseInbound(in) }); a != 0 {
			t.Errorf("%q: %v allocations", in, a)
		}
	}
}

func FuzzParseInbound(f *testing.F) {
	for _, c := range validCases() {
		f.Add(c.in)
		f.Add(c.in[:len(c.in)/2])
	}
	for _, h := range roundTripCases() {
		b, _ := h.Append(nil)
		f.Add(b)
	}
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"))
	f.Add([]byte("PROXY TCP6 " + long6 + " ::1 1 2\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add(v2Len(0x21, 0x21, 35, tcp6Body...))
	f.Add(v2(0x21, 0x00, 0xe0, 0, 0, 0xe1, 0xff, 0xff, 1))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, n, err := ParseInbound(in)
		if err != nil {
			if n != 0 {
				t.Fatalf("n %d with %v", n, err)
			}
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrNoProxyHeader) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("unexpected error %v", err)
			}
			if err == ErrShort && len(in) >= MaxInbound {
				t.Fatalf("ErrShort after %d bytes", len(in))
			}
			return
		}
		if n <= 0 || n > len(in) || n > MaxInbound || h.Version == 1 && n > MaxV1 {
			t.Fatalf("n %d of %d bytes, version %d", n, len(in), h.Version)
		}
		if h.Local == h.Src.IsValid() || h.Local == h.Dst.IsValid() || h.Version == 1 && h.TLVs != nil {
			t.Fatalf("inconsistent %+v", h)
		}
		// The header alone parses the same; its prefixes are short.
		again, m, err := ParseInbound(in[:n])
		if err != nil || m != n || again.Src != h.Src || again.Dst != h.Dst || len(again.TLVs) != len(h.TLVs) {
			t.Fatalf("header alone: %+v %d %v; with the rest %+v %d", again, m, err, h, n)
		}
		for k := range n {
			if _, _, err := ParseInbound(in[:k]); err != ErrShort {
				t.Fatalf("%d-byte prefix of a %d-byte header: %v", k, n, err)
			}
		}
		if h.Version == 2 && !h.Local {
			reencode(t, h)
		}
	})
}

// reencode checks that Header.Append writes h's addresses and TLVs so
// that ParseInbound reads them back. A TCP6 header of IPv4-mapped
// addresses comes back as TCP4, and its checksum, if any, no longer
// matches: addresses compare unmapped, checksums are left out.
func reencode(t *testing.T, h Inbound) {
	var tlvs []TLV
	for _, v := range h.TLVs {
		if v.Type != TypeCRC32C {
			tlvs = append(tlvs, v)
		}
	}
	enc := Header{Source: net.TCPAddrFromAddrPort(h.Src), Destination: net.TCPAddrFromAddrPort(h.Dst), TLVs: tlvs}
	b, err := enc.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	back, n, err := ParseInbound(b)
	if err != nil || n != len(b) {
		t.Fatalf("re-encoded %+v: n %d of %d, %v", h, n, len(b), err)
	}
	if back.Local || unmap(back.Src) != unmap(h.Src) || unmap(back.Dst) != unmap(h.Dst) || len(back.TLVs) != len(tlvs) {
		t.Fatalf("re-encoded %+v parses as %+v", h, back)
	}
	for i, v := range tlvs {
		if back.TLVs[i].Type != v.Type || !bytes.Equal(back.TLVs[i].Value, v.Value) {
			t.Fatalf("re-encoded TLV %d: %+v, want %+v", i, back.TLVs[i], v)
		}
	}
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

func BenchmarkParseInbound(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{"v1-tcp4", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n")},
		{"v1-tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8:ffff::2 56324 443\r\n")},
		{"v2-tcp4", v2(0x21, 0x11, tcp4Body...)},
		{"v2-tcp6", v2(0x21, 0x21, tcp6Body...)},
		{"v2-tcp4-tlvs", v2(0x21, 0x11, cat(tcp4Body, []byte{0xea, 0, 4, 'v', 'p', 'c', 'e', 0x02, 0, 1, 'a'})...)},
		{"http", []byte("GET / HTTP/1.1\r\n")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.in)))
			for b.Loop() {
				if _, _, err := ParseInbound(bc.in); err != nil && bc.name != "http" {
					b.Fatal(err)
				}
			}
		})
	}
}
