package frame

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func TestHandoffRoundTrip(t *testing.T) {
	for _, m := range []*Handoff{
		{Key: []byte("room-1"), Listener: 2},
		{Key: []byte("k"), Early: []byte("hello\n")},
		{Direct: true, Shard: 7, Listener: 65535, Early: bytes.Repeat([]byte{1}, MaxHandoffEarly)},
		{Key: bytes.Repeat([]byte("x"), MaxKeyLimit)},
		{Key: []byte("example.com"), TLS: true, Early: []byte{0x16, 3, 1}},
		{Key: []byte("203.0.113.9"), Client: netip.MustParseAddrPort("203.0.113.9:4711"), Local: netip.MustParseAddrPort("[2001:db8::1%eth0]:443")},
		{Direct: true, Shard: 1, Stream: true, Client: netip.MustParseAddrPort("[::1]:1"), Local: netip.MustParseAddrPort("127.0.0.1:2")},
		{Key: []byte("room"), Early: []byte{23, 3, 3, 0, 1}, Session: testSession()},
		{Key: []byte("room"), Session: &TLSSession{Suite: 0x1302, ClientSecret: bytes.Repeat([]byte{1}, MaxSessionSecret),
			ServerSecret: []byte{2}, ClientSeq: ^uint64(0), Info: TLSInfo{Version: 0x0304, PeerSubject: "CN=x"},
			Plain: bytes.Repeat([]byte{3}, MaxHandoffEarly)}},
	} {
		b, err := AppendHandoff([]byte("prefix"), m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseHandoff(b[len("prefix"):], MaxKeyLimit)
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
	}
}

func TestHandoffEncodeErrors(t *testing.T) {
	for _, m := range []*Handoff{
		{},
		{Direct: true, Key: []byte("k")},
		{Key: bytes.Repeat([]byte("x"), MaxKeyLimit+1)},
		{Key: []byte("k"), Early: make([]byte, MaxHandoffEarly+1)},
		{Key: []byte("k"), Stream: true, TLS: true},
		{Key: []byte("k"), Client: netip.MustParseAddrPort("192.0.2.1:1")},
		{Key: []byte("k"), TLS: true, Session: testSession()},
		{Key: []byte("k"), Stream: true, Session: testSession()},
		{Key: []byte("k"), Early: []byte("x"), Session: &TLSSession{ClientSecret: []byte{1}, ServerSecret: []byte{1}, Plain: make([]byte, MaxHandoffEarly)}},
		{Key: []byte("k"), Session: &TLSSession{ClientSecret: []byte{1}}},
		{Key: []byte("k"), Session: &TLSSession{ClientSecret: []byte{1}, ServerSecret: make([]byte, MaxSessionSecret+1)}},
	} {
		if b, err := AppendHandoff([]byte("x"), m); !errors.Is(err, ErrBadHeader) || string(b) != "x" {
			t.Errorf("%+v: %q, %v; want ErrBadHeader and dst unchanged", m, b, err)
		}
	}
}

func TestHandoffParseErrors(t *testing.T) {
	good, _ := AppendHandoff(nil, &Handoff{Key: []byte("room"), Early: []byte("ab")})
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrBadHeader},
		{"stream and TLS", []byte{1, 0x0a, 0, 0, 0, 1, 'k', 0, 0, 0, 0}, ErrBadHeader},
		{"address cut", []byte{1, 0x04, 0, 0, 0, 1, 'k', 6, 127, 0}, ErrBadHeader},
		{"address bad", []byte{1, 0x04, 0, 0, 0, 1, 'k', 3, 127, 0, 0, 3, 127, 0, 0, 0, 0, 0, 0}, ErrBadHeader},
		{"short prefix", good[:3], ErrBadHeader},
		{"version", append([]byte{9}, good[1:]...), ErrBadVersion},
		{"flags", append([]byte{1, 0x80}, good[2:]...), ErrBadHeader},
		{"cut in key", good[:7], ErrBadHeader},
		{"cut in early", good[:len(good)-1], ErrBadHeader},
		{"trailing", append(append([]byte(nil), good...), 0), ErrBadHeader},
		{"empty key", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrBadHeader},
		{"key over max", good, ErrHeaderTooLarge},
		{"early over max", []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}, ErrHeaderTooLarge},
	} {
		maxKey := MaxKeyLimit
		if tc.name == "key over max" {
			maxKey = 3
		}
		if _, err := ParseHandoff(tc.b, maxKey); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// testSession is a TLS session as a sender would hand it off.
func testSession() *TLSSession {
	return &TLSSession{
		Suite: 0x1301, ClientSecret: bytes.Repeat([]byte{0xc}, 32), ServerSecret: bytes.Repeat([]byte{0x5}, 32),
		ClientSeq: 2, ServerSeq: 1,
		Info:  TLSInfo{Version: 0x0304, ServerName: "example.com", ALPN: "h2"},
		Plain: []byte("after the key\n"),
	}
}

func TestHandoffSessionParseErrors(t *testing.T) {
	good, _ := AppendHandoff(nil, &Handoff{Key: []byte("k"), Early: []byte("ab"), Session: testSession()})
	plainLen := len(good) - len(testSession().Plain) - 4
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"cut in session", good[:len(good)-20], ErrBadHeader},
		{"session marked TLS", append([]byte{1, good[1] | 0x08}, good[2:]...), ErrBadHeader},
		{"plaintext over the early bound", append(append([]byte(nil), good[:plainLen]...), 0, 1, 0, 0), ErrHeaderTooLarge},
	} {
		if _, err := ParseHandoff(tc.b, MaxKeyLimit); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzParseHandoff: whatever the bytes, ParseHandoff either refuses them
// or returns a message that encodes back to exactly them.
func FuzzParseHandoff(f *testing.F) {
	b, _ := AppendHandoff(nil, &Handoff{Key: []byte("room"), Listener: 1, Early: []byte("hi")})
	f.Add(b, uint16(16))
	b, _ = AppendHandoff(nil, &Handoff{Direct: true, Shard: 3})
	f.Add(b, uint16(1))
	b, _ = AppendHandoff(nil, &Handoff{Key: []byte("room"), Stream: true})
	f.Add(b, uint16(16))
	b, _ = AppendHandoff(nil, &Handoff{Key: []byte("room"), Early: []byte{23, 3, 3}, Session: testSession()})
	f.Add(b, uint16(16))
	f.Fuzz(func(t *testing.T, in []byte, maxKey16 uint16) {
		maxKey := fuzzMaxKey(maxKey16)
		m, err := ParseHandoff(in, maxKey)
		if err != nil {
			return
		}
		if len(m.Key) > maxKey {
			t.Fatalf("key of %d bytes with max %d", len(m.Key), maxKey)
		}
		out, err := AppendHandoff(nil, m)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", m, err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("re-encoded %q, parsed from %q", out, in)
		}
	})
}
