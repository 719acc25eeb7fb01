package frame

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// The fuzz targets' seed corpora are in testdata/fuzz/<Target>/, written by
// TestWriteFuzzCorpus (go test ./frame -run TestWriteFuzzCorpus -corpus).

func fuzzEncoding(b byte) Encoding {
	if b&1 == 0 {
		return Line
	}
	return Binary
}

func fuzzMaxKey(m uint16) int {
	if m == 0 {
		return 1
	}
	return int(m)
}

// FuzzDecoder feeds arbitrary input whole and split into three reads at
// arbitrary points, and checks that the results agree, that the decoder
// never claims bytes past the preamble or buffers more than it may, and
// that a decoded preamble encodes back to one that decodes the same.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte("room1\nhello"), byte(0), uint16(16), uint16(2), uint16(7))
	f.Add([]byte("\xb1\x00\x05room1hello"), byte(1), uint16(16), uint16(1), uint16(4))
	f.Fuzz(func(t *testing.T, in []byte, encb byte, maxKey16 uint16, cut1, cut2 uint16) {
		enc, maxKey := fuzzEncoding(encb), fuzzMaxKey(maxKey16)
		d, err := NewDecoder(enc, maxKey)
		if err != nil {
			t.Fatal(err)
		}
		n, done, err := d.Feed(in)
		if cap(d.key) > maxKey+1 {
			t.Fatalf("key buffer grew to %d with maxKey %d", cap(d.key), maxKey)
		}
		var whole Preamble
		if err == nil {
			if n > len(in) || (!done && n != len(in)) {
				t.Fatalf("Feed = %d, %v for %d bytes", n, done, len(in))
			}
			if done {
				whole = d.Preamble()
				whole.Key = bytes.Clone(whole.Key)
				checkReencode(t, enc, maxKey, whole)
				if enc == Binary && !bytes.Equal(mustReencode(t, enc, whole), in[:n]) {
					t.Fatalf("binary preamble %q is not canonical", in[:n])
				}
			}
		}
		// The same input in three reads.
		a, b := int(cut1)%(len(in)+1), int(cut2)%(len(in)+1)
		if a > b {
			a, b = b, a
		}
		d.Reset()
		p, rest, done2, err2 := feedAll(d, in[:a], in[a:b], in[b:])
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("whole: %v, split at %d,%d: %v", err, a, b, err2)
		}
		if err != nil {
			return
		}
		if done2 != done {
			t.Fatalf("whole done=%v, split done=%v", done, done2)
		}
		if done && (p.Direct != whole.Direct || p.Shard != whole.Shard || p.Token != whole.Token ||
			!bytes.Equal(p.Key, whole.Key) || !bytes.Equal(rest, in[n:])) {
			t.Fatalf("whole %+v rest %q, split %+v rest %q", whole, in[n:], p, rest)
		}
	})
}

func mustReencode(t *testing.T, enc Encoding, p Preamble) []byte {
	t.Helper()
	var b []byte
	var err error
	if p.Direct {
		b, err = AppendDirectToken(nil, enc, p.Shard, p.Token)
	} else {
		b, err = AppendKey(nil, enc, p.Key)
	}
	if err != nil {
		t.Fatalf("re-encoding %+v: %v", p, err)
	}
	return b
}

func checkReencode(t *testing.T, enc Encoding, maxKey int, p Preamble) {
	t.Helper()
	if !p.Direct && (len(p.Key) == 0 || len(p.Key) > maxKey) {
		t.Fatalf("decoded key of %d bytes with maxKey %d", len(p.Key), maxKey)
	}
	if !p.Direct && enc == Line && !LineKeyOK(p.Key) {
		t.Fatalf("line decoder returned key %q that the line encoding cannot carry", p.Key)
	}
	b := mustReencode(t, enc, p)
	d, _ := NewDecoder(enc, maxKey)
	n, done, err := d.Feed(b)
	q := d.Preamble()
	if err != nil || !done || n != len(b) || q.Direct != p.Direct || q.Shard != p.Shard ||
		q.Token != p.Token || !bytes.Equal(q.Key, p.Key) {
		t.Fatalf("%+v re-encoded as %q decodes to %+v (%d, %v, %v)", p, b, q, n, done, err)
	}
}

// FuzzKeyRoundTrip encodes arbitrary keys and checks that they decode back
// exactly, with nothing consumed past them, or that the encoder refused
// them for the documented reasons.
func FuzzKeyRoundTrip(f *testing.F) {
	f.Add([]byte("room1"), byte(0), []byte("payload"))
	f.Fuzz(func(t *testing.T, key []byte, encb byte, tail []byte) {
		enc := fuzzEncoding(encb)
		b, err := AppendKey(nil, enc, key)
		if err != nil {
			switch {
			case len(key) == 0:
				if !errors.Is(err, ErrEmptyKey) {
					t.Fatal(err)
				}
			case len(key) > MaxKeyLimit:
				if !errors.Is(err, ErrKeyTooLong) {
					t.Fatal(err)
				}
			case enc == Line && !LineKeyOK(key):
				if !errors.Is(err, ErrReservedKey) && !errors.Is(err, ErrLineKey) {
					t.Fatal(err)
				}
			default:
				t.Fatalf("AppendKey(%v, %q): %v", enc, key, err)
			}
			return
		}
		if enc == Line && !LineKeyOK(key) {
			t.Fatalf("line-encoded %q", key)
		}
		d, _ := NewDecoder(enc, MaxKeyLimit)
		in := append(b, tail...)
		n, done, err := d.Feed(in)
		if err != nil || !done || n != len(b) || !bytes.Equal(d.Preamble().Key, key) || d.Preamble().Direct {
			t.Fatalf("%q: Feed = %d, %v, %v, key %q", in, n, done, err, d.Preamble().Key)
		}
		// One byte short of the limit is refused, as too long.
		if len(key) > 1 {
			d.Init(enc, len(key)-1)
			if _, _, err := d.Feed(in); !errors.Is(err, ErrKeyTooLong) {
				t.Fatalf("%q with maxKey %d: %v", in, len(key)-1, err)
			}
		}
	})
}

// FuzzDirectRoundTrip checks that a direct preamble decodes back to its
// index and token in both encodings and verifies only with its secret.
func FuzzDirectRoundTrip(f *testing.F) {
	f.Add(uint32(7), []byte("s3cret"), []byte("other"))
	f.Fuzz(func(t *testing.T, shard uint32, secret, other []byte) {
		if len(secret) == 0 {
			return
		}
		for _, enc := range []Encoding{Line, Binary} {
			b, err := AppendDirect(nil, enc, shard, secret)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := NewDecoder(enc, 1)
			n, done, err := d.Feed(b)
			p := d.Preamble()
			if err != nil || !done || n != len(b) || !p.Direct || p.Shard != shard {
				t.Fatalf("%v %q: %d %v %v %+v", enc, b, n, done, err, p)
			}
			if err := VerifyDirect(secret, int(shard&0xffff)+1, p.Shard&0xffff, DirectToken(secret, shard&0xffff)); err != nil {
				t.Fatal(err)
			}
			if err := VerifyDirect(secret, 1<<31-1, p.Shard, p.Token); err != nil && !errors.Is(err, ErrShardRange) {
				t.Fatal(err)
			}
			// HMAC keys that differ only by trailing NULs (up to the
			// block size) are equivalent, so compare tokens, not secrets.
			if len(other) > 0 && DirectToken(other, shard) != p.Token {
				if err := VerifyDirect(other, 1<<31-1, p.Shard, p.Token); !errors.Is(err, ErrBadSecret) {
					t.Fatalf("other secret: %v", err)
				}
			}
		}
	})
}

// FuzzReadStreamHeader reads arbitrary bytes as a stream header: it must
// never panic, read past the header, or accept anything that does not
// re-encode to exactly the bytes it read.
func FuzzReadStreamHeader(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 11, 0, 1, 'k', 0, 0, 0, 0, 0, 0, 0, 0}, uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, maxKey, maxEarly uint16) {
		lim := HeaderLimits{MaxKey: int(maxKey), MaxEarly: int(maxEarly)}
		r := bytes.NewReader(in)
		h, err := ReadStreamHeader(r, lim)
		if err != nil {
			if h != nil {
				t.Fatal("header and error")
			}
			return
		}
		used := in[:len(in)-r.Len()]
		b, err := AppendStreamHeader(nil, h)
		if err != nil {
			t.Fatalf("accepted header does not encode: %v", err)
		}
		if !bytes.Equal(b, used) {
			t.Fatalf("read %x, re-encoded %x", used, b)
		}
	})
}

// FuzzStreamHeaderRoundTrip encodes arbitrary headers and reads them back.
func FuzzStreamHeaderRoundTrip(f *testing.F) {
	f.Add(false, uint32(0), []byte("room1"), "tcp", "192.0.2.1:4000", "tcp", "198.51.100.7:443",
		true, uint16(0x0304), "chat.example", "h2", "CN=alice", []byte("hi\n"))
	f.Fuzz(func(t *testing.T, direct bool, shard uint32, key []byte, cn, ca, ln, la string,
		hasTLS bool, ver uint16, sni, alpn, subj string, early []byte) {
		h := &StreamHeader{Direct: direct, Shard: shard, Key: key,
			Client: Addr{cn, ca}, Local: Addr{ln, la}, Early: early}
		if hasTLS {
			h.TLS = &TLSInfo{ver, sni, alpn, subj}
		}
		b, err := AppendStreamHeader(nil, h)
		if err != nil {
			if !errors.Is(err, ErrBadHeader) {
				t.Fatal(err)
			}
			return
		}
		got, err := ReadStreamHeader(bytes.NewReader(append(b, 0xee)), HeaderLimits{MaxKey: MaxKeyLimit, MaxEarly: MaxEarlyLimit})
		if err != nil {
			t.Fatalf("%+v: %v", h, err)
		}
		if len(h.Key) == 0 {
			h.Key = nil
		}
		if len(h.Early) == 0 {
			h.Early = nil
		}
		if !h.Direct {
			h.Shard = 0 // ignored, and not sent, in a key header
		}
		if !reflect.DeepEqual(got, h) {
			t.Fatalf("got %+v, want %+v", got, h)
		}
	})
}

// FuzzErrorLine checks that AppendError always makes one bounded line that
// ParseError reads back, and that ParseError never panics.
func FuzzErrorLine(f *testing.F) {
	f.Add("key too long", []byte("-ERR key too long\r\n"))
	f.Fuzz(func(t *testing.T, reason string, line []byte) {
		b := AppendError(nil, reason)
		if len(b) > 6+MaxReason || bytes.IndexByte(b, '\n') != len(b)-1 || bytes.IndexByte(b, '\r') >= 0 {
			t.Fatalf("AppendError(%q) = %q", reason, b)
		}
		r, ok := ParseError(b)
		if !ok || len(r) != min(len(reason), MaxReason) {
			t.Fatalf("ParseError(%q) = %q, %v", b, r, ok)
		}
		_, _ = ParseError(line)
	})
}
