package frame

import (
	"bytes"
	"testing"
)

// benchDecode decodes in with one pooled Decoder per iteration, as a
// server does for each connection: Reset, then Feed. It must not allocate.
func benchDecode(b *testing.B, enc Encoding, in []byte, reads int) {
	d, err := NewDecoder(enc, DefaultMaxKey)
	if err != nil {
		b.Fatal(err)
	}
	step := (len(in) + reads - 1) / reads
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		d.Reset()
		for i := 0; i < len(in); i += step {
			_, done, err := d.Feed(in[i:min(i+step, len(in))])
			if err != nil {
				b.Fatal(err)
			}
			if done {
				break
			}
		}
		if !d.Done() {
			b.Fatal("not done")
		}
	}
}

func key(n int) []byte { return bytes.Repeat([]byte("k"), n) }

func BenchmarkDecodeBinary16(b *testing.B) {
	in, _ := AppendKey(nil, Binary, key(16))
	benchDecode(b, Binary, append(in, "payload"...), 1)
}

func BenchmarkDecodeBinary256(b *testing.B) {
	in, _ := AppendKey(nil, Binary, key(256))
	benchDecode(b, Binary, in, 1)
}

// BenchmarkDecodeBinary256Split feeds the preamble in 8 reads.
func BenchmarkDecodeBinary256Split(b *testing.B) {
	in, _ := AppendKey(nil, Binary, key(256))
	benchDecode(b, Binary, in, 8)
}

func BenchmarkDecodeLine16(b *testing.B) {
	in, _ := AppendKey(nil, Line, key(16))
	benchDecode(b, Line, append(in, "payload"...), 1)
}

func BenchmarkDecodeLine256(b *testing.B) {
	in, _ := AppendKey(nil, Line, key(256))
	benchDecode(b, Line, in, 1)
}

func BenchmarkDecodeDirectBinary(b *testing.B) {
	in, _ := AppendDirect(nil, Binary, 3, []byte("s3cret"))
	benchDecode(b, Binary, in, 1)
}

func BenchmarkDecodeDirectLine(b *testing.B) {
	in, _ := AppendDirect(nil, Line, 3, []byte("s3cret"))
	benchDecode(b, Line, in, 1)
}

// BenchmarkDecodeBinaryFresh uses a new Decoder per connection: the cost
// without a pool, one allocation for the Decoder and one for the key.
func BenchmarkDecodeBinaryFresh(b *testing.B) {
	in, _ := AppendKey(nil, Binary, key(16))
	b.ReportAllocs()
	for b.Loop() {
		d, _ := NewDecoder(Binary, DefaultMaxKey)
		if _, done, err := d.Feed(in); !done || err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyDirect(b *testing.B) {
	secret := []byte("s3cret")
	tok := DirectToken(secret, 3)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyDirect(secret, 8, 3, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendKeyBinary(b *testing.B) {
	k := key(16)
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendKey(buf[:0], Binary, k)
	}
}

func BenchmarkAppendStreamHeader(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendStreamHeader(buf[:0], specHeader)
	}
}

func BenchmarkReadStreamHeader(b *testing.B) {
	in, _ := AppendStreamHeader(nil, specHeader)
	r := bytes.NewReader(in)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(in)
		if _, err := ReadStreamHeader(r, HeaderLimits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeNoAlloc makes the benchmarks' claim a test: a pooled Decoder
// decodes binary and line preambles without allocating.
func TestDecodeNoAlloc(t *testing.T) {
	for _, enc := range []Encoding{Binary, Line} {
		in, _ := AppendKey(nil, enc, key(300))
		d, _ := NewDecoder(enc, DefaultMaxKey)
		d.Feed(in) // the first key sizes the buffer
		allocs := testing.AllocsPerRun(100, func() {
			d.Reset()
			if _, done, err := d.Feed(in[:7]); done || err != nil {
				t.Fatal(err)
			}
			if _, done, err := d.Feed(in[7:]); !done || err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations per decode", enc, allocs)
		}
	}
}
