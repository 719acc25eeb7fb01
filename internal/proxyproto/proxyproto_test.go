package proxyproto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"
)

// roundTripCases are headers of every address family, with and without
// TLVs; TestRoundTrip checks them and they seed FuzzRead's corpus.
func roundTripCases() []Header {
	cases := []Header{
		{Source: &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 4000}, Destination: &net.TCPAddr{IP: net.ParseIP("198.51.100.2"), Port: 443}},
		{Source: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 4000}, Destination: &net.TCPAddr{IP: net.ParseIP("2001:db8::2"), Port: 443}},
		{Source: &net.UnixAddr{Name: "@client", Net: "unix"}, Destination: &net.UnixAddr{Name: "/run/sub.sock", Net: "unix"}},
		// sun_path filled to its 108 bytes, with no NUL.
		{Source: &net.UnixAddr{Name: strings.Repeat("s", 108), Net: "unix"}, Destination: &net.UnixAddr{Name: "/" + strings.Repeat("d", 107), Net: "unix"}},
		{Local: true},
	}
	cases[0].TLVs = AppendSSL([]TLV{{TypeKey, []byte("room\x00\xff")}, {TypeAuthority, []byte("a.example")}, {TypeALPN, []byte("h2")}}, "TLSv1.3", true)
	return cases
}

func TestRoundTrip(t *testing.T) {
	for i, h := range roundTripCases() {
		b, err := h.Append([]byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		r := bytes.NewReader(append(b[1:], "after"...))
		got, err := Read(r)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if rest := r.Len(); rest != len("after") {
			t.Fatalf("case %d: read past the header (%d left)", i, rest)
		}
		if h.Local != got.Local || addrString(h.Source) != addrString(got.Source) || addrString(h.Destination) != addrString(got.Destination) {
			t.Fatalf("case %d: %+v, want %+v", i, got, h)
		}
		if len(got.TLVs) != len(h.TLVs) {
			t.Fatalf("case %d: %d TLVs, want %d", i, len(got.TLVs), len(h.TLVs))
		}
		for j := range h.TLVs {
			if got.TLVs[j].Type != h.TLVs[j].Type || !bytes.Equal(got.TLVs[j].Value, h.TLVs[j].Value) {
				t.Fatalf("case %d TLV %d: %+v, want %+v", i, j, got.TLVs[j], h.TLVs[j])
			}
		}
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// TestKnownBytes checks the encoding of a TCP4 header byte by byte
// against the layout in HAProxy's proxy-protocol.txt.
func TestKnownBytes(t *testing.T) {
	h := Header{Source: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1000}, Destination: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 7000},
		TLVs: []TLV{{TypeKey, []byte("k")}}}
	b, err := h.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "0d0a0d0a000d0a515549540a" + "21" + "11" + "0010" + "7f000001" + "7f000002" + "03e8" + "1b58" + "e00001" + "6b"
	if hex.EncodeToString(b) != want {
		t.Fatalf("got  %x\nwant %s", b, want)
	}
}

func TestReadErrors(t *testing.T) {
	good, _ := (&Header{Local: true}).Append(nil)
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"no signature": {[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ErrNoSignature},
		"version 1":    {append(append([]byte{}, good[:12]...), 0x11, 0, 0, 0), ErrVersion},
		"short tcp4":   {append(append([]byte{}, good[:12]...), 0x21, 0x11, 0, 4, 1, 2, 3, 4), ErrMalformed},
		"bad tlv":      {append(append([]byte{}, good[:12]...), 0x21, 0x00, 0, 2, 0xe0, 0), ErrMalformed},
	} {
		if _, err := Read(bytes.NewReader(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func FuzzRead(f *testing.F) {
	h := Header{Source: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}, Destination: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 2}, TLVs: []TLV{{TypeKey, []byte("key")}}}
	b, _ := h.Append(nil)
	f.Add(b)
	f.Add([]byte("PROXY"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := Read(bytes.NewReader(in))
		if err != nil {
			return
		}
		// What decodes re-encodes to a header that decodes the same.
		again, err := got.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Read(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("re-encoded header does not decode: %v", err)
		}
		if len(back.TLVs) != len(got.TLVs) || addrString(back.Source) != addrString(got.Source) {
			t.Fatalf("round trip changed the header: %+v vs %+v", back, got)
		}
	})
}
