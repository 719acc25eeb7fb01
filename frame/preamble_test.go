package frame

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// feedAll feeds chunks to d in order and returns the preamble, the bytes
// that followed it, and the error.
func feedAll(d *Decoder, chunks ...[]byte) (Preamble, []byte, bool, error) {
	var rest []byte
	done := false
	for _, c := range chunks {
		if done {
			rest = append(rest, c...)
			continue
		}
		n, ok, err := d.Feed(c)
		if err != nil {
			return Preamble{}, nil, false, err
		}
		if n < 0 || n > len(c) || (!ok && n != len(c)) {
			panic("Feed returned a bad count")
		}
		if ok {
			done = true
			rest = append(rest, c[n:]...)
		}
	}
	return d.Preamble(), rest, done, nil
}

type preambleCase struct {
	name   string
	enc    Encoding
	maxKey int
	in     string
	key    string // expected key, if not direct and no error
	direct bool
	shard  uint32
	rest   string
	err    error // nil: success; errIncomplete: needs more input
}

var errIncomplete = errors.New("incomplete")

var tokA = DirectToken([]byte("s3cret"), 7)

func directLine(shard uint32, secret string) string {
	b, err := AppendDirect(nil, Line, shard, []byte(secret))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func directBin(shard uint32, secret string) string {
	b, err := AppendDirect(nil, Binary, shard, []byte(secret))
	if err != nil {
		panic(err)
	}
	return string(b)
}

var preambleCases = []preambleCase{
	{name: "line key", enc: Line, maxKey: 16, in: "room1\nhello", key: "room1", rest: "hello"},
	{name: "line crlf", enc: Line, maxKey: 16, in: "room1\r\nhello\r\n", key: "room1", rest: "hello\r\n"},
	{name: "line one byte", enc: Line, maxKey: 1, in: "a\n", key: "a"},
	{name: "line max with cr", enc: Line, maxKey: 3, in: "abc\r\nX", key: "abc", rest: "X"},
	{name: "line inner cr kept", enc: Line, maxKey: 8, in: "a\rb\r\r\n", key: "a\rb\r"},
	{name: "line nul and 8bit", enc: Line, maxKey: 8, in: "\x00\xff\xfe\n", key: "\x00\xff\xfe"},
	{name: "line leading cr", enc: Line, maxKey: 8, in: "\rx\n", key: "\rx"},
	{name: "line empty", enc: Line, maxKey: 8, in: "\n", err: ErrEmptyKey},
	{name: "line empty crlf", enc: Line, maxKey: 8, in: "\r\n", err: ErrEmptyKey},
	{name: "line too long", enc: Line, maxKey: 3, in: "abcd\n", err: ErrKeyTooLong},
	{name: "line too long no newline", enc: Line, maxKey: 3, in: "abcd", err: ErrKeyTooLong},
	{name: "line too long after cr", enc: Line, maxKey: 3, in: "abc\rx", err: ErrKeyTooLong},
	{name: "line too long cr cr", enc: Line, maxKey: 3, in: "abc\r\r", err: ErrKeyTooLong},
	{name: "line pending cr", enc: Line, maxKey: 3, in: "abc\r", err: errIncomplete},
	{name: "line incomplete", enc: Line, maxKey: 8, in: "abc", err: errIncomplete},
	{name: "line nothing", enc: Line, maxKey: 8, in: "", err: errIncomplete},
	{name: "line bang key", enc: Line, maxKey: 8, in: "!bang\n", err: ErrReservedKey},
	{name: "line bang only", enc: Line, maxKey: 8, in: "!\n", err: ErrReservedKey},
	{name: "line direct", enc: Line, maxKey: 1, in: directLine(7, "s3cret") + "GET", direct: true, shard: 7, rest: "GET"},
	{name: "line direct crlf", enc: Line, maxKey: 1, in: strings.TrimSuffix(directLine(0, "k"), "\n") + "\r\n", direct: true, shard: 0},
	{name: "line direct max index", enc: Line, maxKey: 1, in: directLine(4294967295, "k"), direct: true, shard: 4294967295},
	{name: "line direct upper hex", enc: Line, maxKey: 1, in: "!12 " + strings.ToUpper(strings.TrimPrefix(directLine(12, "k"), "!12 ")), direct: true, shard: 12},
	{name: "line direct overflow", enc: Line, maxKey: 1, in: "!4294967296 " + strings.Repeat("0", 64) + "\n", err: ErrBadDirect},
	{name: "line direct leading zero", enc: Line, maxKey: 1, in: "!01 " + strings.Repeat("0", 64) + "\n", err: ErrBadDirect},
	{name: "line direct no space", enc: Line, maxKey: 1, in: "!1\n", err: ErrBadDirect},
	{name: "line direct short token", enc: Line, maxKey: 1, in: "!1 " + strings.Repeat("0", 63) + "\n", err: ErrBadDirect},
	{name: "line direct long token", enc: Line, maxKey: 1, in: "!1 " + strings.Repeat("0", 65) + "\n", err: ErrBadDirect},
	{name: "line direct bad hex", enc: Line, maxKey: 1, in: "!1 " + strings.Repeat("g", 64) + "\n", err: ErrBadDirect},
	{name: "line direct cr cr", enc: Line, maxKey: 1, in: "!1 " + strings.Repeat("0", 64) + "\r\r\n", err: ErrBadDirect},
	{name: "line direct incomplete", enc: Line, maxKey: 1, in: "!1 " + strings.Repeat("0", 64), err: errIncomplete},

	{name: "binary key", enc: Binary, maxKey: 16, in: "\xb1\x00\x05room1hello", key: "room1", rest: "hello"},
	{name: "binary key with newline", enc: Binary, maxKey: 16, in: "\xb1\x00\x03a\nb\n", key: "a\nb", rest: "\n"},
	{name: "binary max", enc: Binary, maxKey: 3, in: "\xb1\x00\x03abc", key: "abc"},
	{name: "binary 64k", enc: Binary, maxKey: MaxKeyLimit, in: "\xb1\xff\xff" + strings.Repeat("k", 65535) + "!", key: strings.Repeat("k", 65535), rest: "!"},
	{name: "binary too long", enc: Binary, maxKey: 3, in: "\xb1\x00\x04", err: ErrKeyTooLong},
	{name: "binary too long 16 bit", enc: Binary, maxKey: 1024, in: "\xb1\x04\x01", err: ErrKeyTooLong},
	{name: "binary empty", enc: Binary, maxKey: 3, in: "\xb1\x00\x00abc", err: ErrEmptyKey},
	{name: "binary bad magic", enc: Binary, maxKey: 3, in: "room\n", err: ErrBadMagic},
	{name: "binary bad magic zero", enc: Binary, maxKey: 3, in: "\x00", err: ErrBadMagic},
	{name: "binary incomplete", enc: Binary, maxKey: 8, in: "\xb1\x00\x05roo", err: errIncomplete},
	{name: "binary direct", enc: Binary, maxKey: 1, in: directBin(7, "s3cret") + "xyz", direct: true, shard: 7, rest: "xyz"},
	{name: "binary direct max", enc: Binary, maxKey: 1, in: directBin(0xffffffff, "k"), direct: true, shard: 0xffffffff},
	{name: "binary direct incomplete", enc: Binary, maxKey: 1, in: directBin(1, "k")[:36], err: errIncomplete},
}

func checkCase(t *testing.T, c preambleCase, split string, p Preamble, rest []byte, done bool, err error) {
	t.Helper()
	switch {
	case c.err == errIncomplete:
		if err != nil || done {
			t.Fatalf("%s: got done=%v err=%v, want incomplete", split, done, err)
		}
	case c.err != nil:
		if !errors.Is(err, c.err) {
			t.Fatalf("%s: got err %v, want %v", split, err, c.err)
		}
	default:
		if err != nil || !done {
			t.Fatalf("%s: got done=%v err=%v", split, done, err)
		}
		if p.Direct != c.direct || string(p.Key) != c.key || p.Shard != c.shard || string(rest) != c.rest {
			t.Fatalf("%s: got %+v rest %q, want key %q direct %v shard %d rest %q",
				split, p, rest, c.key, c.direct, c.shard, c.rest)
		}
		if c.direct && c.in[len(c.in)-len(c.rest)-1] != '\n' && c.enc == Line {
			t.Fatalf("%s: bad test case", split)
		}
	}
}

// TestDecoderSplits decodes every case whole, split at every byte boundary
// into two reads, and one byte per read, and expects the same result.
func TestDecoderSplits(t *testing.T) {
	for _, c := range preambleCases {
		t.Run(c.name, func(t *testing.T) {
			d, err := NewDecoder(c.enc, c.maxKey)
			if err != nil {
				t.Fatal(err)
			}
			in := []byte(c.in)
			p, rest, done, err := feedAll(d, in)
			checkCase(t, c, "whole", p, rest, done, err)
			limit := len(in)
			if limit > 300 {
				limit = 300 // the 64 KiB case: splits near the start suffice
			}
			for i := 0; i <= limit; i++ {
				d.Reset()
				p, rest, done, err := feedAll(d, in[:i], in[i:])
				checkCase(t, c, "split", p, rest, done, err)
			}
			if len(in) <= 300 {
				d.Reset()
				chunks := make([][]byte, len(in))
				for i := range in {
					chunks[i] = in[i : i+1]
				}
				p, rest, done, err = feedAll(d, chunks...)
				checkCase(t, c, "bytewise", p, rest, done, err)
			}
		})
	}
}

func TestDecoderDirectVerifies(t *testing.T) {
	for _, enc := range []Encoding{Line, Binary} {
		d, _ := NewDecoder(enc, 8)
		in, _ := AppendDirect(nil, enc, 7, []byte("s3cret"))
		p, _, done, err := feedAll(d, in)
		if err != nil || !done || !p.Direct || p.Shard != 7 || p.Token != tokA {
			t.Fatalf("%v: %+v %v %v", enc, p, done, err)
		}
		if err := VerifyDirect([]byte("s3cret"), 8, p.Shard, p.Token); err != nil {
			t.Errorf("%v: VerifyDirect: %v", enc, err)
		}
		if err := VerifyDirect([]byte("s3cret"), 7, p.Shard, p.Token); !errors.Is(err, ErrShardRange) {
			t.Errorf("%v: out of range: %v", enc, err)
		}
		if err := VerifyDirect([]byte("other"), 8, p.Shard, p.Token); !errors.Is(err, ErrBadSecret) {
			t.Errorf("%v: wrong secret: %v", enc, err)
		}
		if err := VerifyDirect([]byte("s3cret"), 8, 6, p.Token); !errors.Is(err, ErrBadSecret) {
			t.Errorf("%v: token for another shard: %v", enc, err)
		}
		if err := VerifyDirect(nil, 8, p.Shard, p.Token); !errors.Is(err, ErrDirectDisabled) {
			t.Errorf("%v: no secret: %v", enc, err)
		}
	}
}

// TestDecoderStops checks that the decoder never consumes past the
// preamble, and reports done and the same error on later calls.
func TestDecoderStops(t *testing.T) {
	d, _ := NewDecoder(Line, 8)
	n, done, err := d.Feed([]byte("k\nmore\n"))
	if n != 2 || !done || err != nil {
		t.Fatalf("Feed = %d %v %v", n, done, err)
	}
	if n, done, err := d.Feed([]byte("x\n")); n != 0 || !done || err != nil {
		t.Fatalf("Feed after done = %d %v %v", n, done, err)
	}
	d.Reset()
	if _, _, err := d.Feed([]byte("\n")); !errors.Is(err, ErrEmptyKey) {
		t.Fatal(err)
	}
	if _, _, err := d.Feed([]byte("k\n")); !errors.Is(err, ErrEmptyKey) || d.Err() != err || d.Done() {
		t.Fatalf("Feed after error = %v", err)
	}
}

// TestDecoderBoundedBuffer checks that a line key over the limit is
// rejected without being buffered: the decoder's buffer never grows past
// maxKey+1 bytes however much is fed.
func TestDecoderBoundedBuffer(t *testing.T) {
	d, _ := NewDecoder(Line, 16)
	_, _, err := d.Feed(bytes.Repeat([]byte("x"), 1<<20))
	if !errors.Is(err, ErrKeyTooLong) {
		t.Fatal(err)
	}
	if cap(d.key) > 17 {
		t.Fatalf("buffer grew to %d bytes", cap(d.key))
	}
	d.Reset()
	for i := 0; i < 16; i++ {
		if _, _, err := d.Feed([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := d.Feed([]byte("y")); !errors.Is(err, ErrKeyTooLong) {
		t.Fatalf("17th byte: %v", err)
	}

	// A binary preamble that announces a long key costs memory only as
	// its bytes arrive.
	d, _ = NewDecoder(Binary, MaxKeyLimit)
	if _, done, err := d.Feed([]byte{MagicKey, 0xff, 0xff, 'k'}); done || err != nil {
		t.Fatal(done, err)
	}
	if cap(d.key) > 64 {
		t.Fatalf("announced 64 KiB key, sent 1 byte: buffer of %d bytes", cap(d.key))
	}
}

func TestDecoderInit(t *testing.T) {
	if _, err := NewDecoder(0, 8); !errors.Is(err, ErrBadEncoding) {
		t.Error(err)
	}
	for _, m := range []int{0, -1, MaxKeyLimit + 1} {
		if _, err := NewDecoder(Line, m); !errors.Is(err, ErrBadMaxKey) {
			t.Errorf("maxKey %d: %v", m, err)
		}
	}
	var d Decoder
	if _, _, err := d.Feed([]byte("x\n")); !errors.Is(err, ErrBadEncoding) {
		t.Errorf("zero Decoder: %v", err)
	}
}
