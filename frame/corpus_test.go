package frame

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var writeCorpus = flag.Bool("corpus", false, "write the fuzz seed corpora under testdata/fuzz")

// corpusValue renders one argument of a fuzz target in the corpus file
// format of go test fuzz v1.
func corpusValue(v any) string {
	switch v := v.(type) {
	case []byte:
		return fmt.Sprintf("[]byte(%q)", v)
	case string:
		return fmt.Sprintf("string(%q)", v)
	case byte:
		return fmt.Sprintf("byte(%d)", v)
	case uint16:
		return fmt.Sprintf("uint16(%d)", v)
	case uint32:
		return fmt.Sprintf("uint32(%d)", v)
	case bool:
		return fmt.Sprintf("bool(%v)", v)
	}
	panic(fmt.Sprintf("corpusValue: %T", v))
}

func fuzzSeeds() map[string][][]any {
	seeds := map[string][][]any{}
	add := func(target string, args ...any) { seeds[target] = append(seeds[target], args) }

	for i, c := range preambleCases {
		if len(c.in) > 4096 {
			continue
		}
		enc := byte(0)
		if c.enc == Binary {
			enc = 1
		}
		add("FuzzDecoder", []byte(c.in), enc, uint16(c.maxKey), uint16(i), uint16(len(c.in)/2))
	}
	for _, k := range []string{"a", "\x00", "room1", "!bang", "a\r", "a\nb", "\r", "\xff\xfe", "",
		strings.Repeat("k", DefaultMaxKey), "chat:général"} {
		add("FuzzKeyRoundTrip", []byte(k), byte(0), []byte("tail\n"))
		add("FuzzKeyRoundTrip", []byte(k), byte(1), []byte(""))
	}
	add("FuzzDirectRoundTrip", uint32(0), []byte("s3cret"), []byte("s3cret!"))
	add("FuzzDirectRoundTrip", uint32(7), []byte("s3cret"), []byte(""))
	add("FuzzDirectRoundTrip", uint32(4294967295), []byte{0, 0xff}, []byte{0})
	add("FuzzDirectRoundTrip", uint32(1000000), []byte(strings.Repeat("x", 100)), []byte("x"))

	for _, h := range headerCases {
		b, err := AppendStreamHeader(nil, h)
		if err != nil {
			panic(err)
		}
		if len(b) > 4096 {
			continue
		}
		add("FuzzReadStreamHeader", b, uint16(0), uint16(0))
		add("FuzzReadStreamHeader", b[:len(b)-1], uint16(0), uint16(0))
		add("FuzzReadStreamHeader", b, uint16(1), uint16(1))
	}
	add("FuzzReadStreamHeader", []byte{2, 0, 0, 0, 0, 0}, uint16(0), uint16(0))
	add("FuzzReadStreamHeader", []byte{1, 0xff, 0, 0, 0, 0}, uint16(0), uint16(0))
	add("FuzzReadStreamHeader", []byte{1, 0, 0xff, 0xff, 0xff, 0xff}, uint16(0), uint16(0))

	add("FuzzStreamHeaderRoundTrip", false, uint32(0), []byte("room1"), "tcp", "192.0.2.1:4000", "tcp",
		"198.51.100.7:443", true, uint16(tls.VersionTLS13), "chat.example", "h2", "CN=alice", []byte("hi\n"))
	add("FuzzStreamHeaderRoundTrip", true, uint32(3), []byte(""), "unix", "@", "unix", "/run/s.sock",
		false, uint16(0), "", "", "", []byte(""))
	add("FuzzStreamHeaderRoundTrip", true, uint32(3), []byte("k"), "", "", "", "",
		false, uint16(0), "", "", "", []byte(""))
	add("FuzzStreamHeaderRoundTrip", false, uint32(0), []byte(""), "tcp", "x", "tcp", "y",
		false, uint16(0), "", "", "", []byte("e"))

	for _, m := range []*Handoff{
		{Key: []byte("room-1"), Listener: 2},
		{Key: []byte("k"), Early: []byte("hello\n")},
		{Direct: true, Shard: 7, Listener: 65535, Early: []byte("x")},
		{Key: []byte(strings.Repeat("x", 300))},
	} {
		b, err := AppendHandoff(nil, m)
		if err != nil {
			panic(err)
		}
		add("FuzzParseHandoff", b, uint16(MaxKeyLimit))
		add("FuzzParseHandoff", b[:len(b)-1], uint16(MaxKeyLimit))
		add("FuzzParseHandoff", b, uint16(len(m.Key)/2)) // key over max
	}
	add("FuzzParseHandoff", []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint16(16))               // empty key
	add("FuzzParseHandoff", []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}, uint16(16))         // early over max
	add("FuzzParseHandoff", []byte{1, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 'k'}, uint16(16)) // unknown flag

	add("FuzzErrorLine", "key too long", []byte("-ERR key too long\n"))
	add("FuzzErrorLine", "two\r\nlines", []byte("+OK\n"))
	add("FuzzErrorLine", strings.Repeat("é", 200), []byte("-ERR \r\n"))
	add("FuzzErrorLine", "", []byte("-ERR a\nb\n"))
	return seeds
}

// TestWriteFuzzCorpus writes the seed corpora when run with -corpus.
// Without the flag it checks that every target has a corpus on disk.
func TestWriteFuzzCorpus(t *testing.T) {
	for target, rows := range fuzzSeeds() {
		dir := filepath.Join("testdata", "fuzz", target)
		if !*writeCorpus {
			ents, err := os.ReadDir(dir)
			if err != nil || len(ents) < len(rows) {
				t.Errorf("%s: %d seeds on disk, want %d (go test ./frame -run TestWriteFuzzCorpus -corpus)",
					dir, len(ents), len(rows))
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, args := range rows {
			var b strings.Builder
			b.WriteString("go test fuzz v1\n")
			for _, a := range args {
				b.WriteString(corpusValue(a) + "\n")
			}
			name := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
			if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
