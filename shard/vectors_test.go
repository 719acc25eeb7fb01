package shard

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The test vectors live in docs/PROTOCOL.md, between the markers below, so
// that the document a client author reads is the one this test checks.
// Run "go test ./shard -run TestVectors -update" to regenerate the table
// after changing vectorKeys.

var update = flag.Bool("update", false, "rewrite the test-vector table in docs/PROTOCOL.md")

const (
	protocolDoc  = "../docs/PROTOCOL.md"
	vectorsBegin = "<!-- shard-vectors:begin -->"
	vectorsEnd   = "<!-- shard-vectors:end -->"
)

// vectorNs are the shard counts in the table's columns.
var vectorNs = []int{1, 2, 3, 8, 64}

// vectorKey is one row of the table: the key as hex, repeated count times.
type vectorKey struct {
	hex   string
	count int
	what  string
}

func (v vectorKey) bytes() []byte {
	b, err := hex.DecodeString(v.hex)
	if err != nil {
		panic(err)
	}
	return bytes.Repeat(b, v.count)
}

func hx(s string) string { return hex.EncodeToString([]byte(s)) }

// vectorKeys covers every length class of xxh3 (1-3, 4-8, 9-16, 17-128,
// 129-240, and the long path over one and several 1 KiB blocks), NUL and
// non-UTF-8 bytes, and keys the line encoding cannot carry.
var vectorKeys = []vectorKey{
	{hx("a"), 1, `"a" (one byte)`},
	{"00", 1, `one NUL byte`},
	{hx("abc"), 1, `"abc"`},
	{hx("abcd"), 1, `"abcd"`},
	{hx("abcdefgh"), 1, `"abcdefgh"`},
	{hx("abcdefghi"), 1, `"abcdefghi"`},
	{hx("0123456789abcdef"), 1, `"0123456789abcdef" (16 bytes)`},
	{hx("0123456789abcdefg"), 1, `"0123456789abcdefg" (17 bytes)`},
	{hx("key\x00with-nul"), 1, `"key", NUL, "with-nul"`},
	{"fffefdfc", 1, `non-UTF-8 bytes`},
	{"c328", 1, `invalid UTF-8 sequence`},
	{hx("chat:général"), 1, `"chat:général" (UTF-8)`},
	{hx("🙂"), 1, `U+1F642 (UTF-8, 4 bytes)`},
	{hx("user:42"), 1, `"user:42"`},
	{hx("room/lobby"), 1, `"room/lobby"`},
	{hx("hello world"), 1, `"hello world"`},
	{hx("Hello"), 1, `"Hello"`},
	{hx("0"), 1, `"0"`},
	{hx("!bang"), 1, `"!bang" (binary encoding only)`},
	{hx("a\r"), 1, `"a", CR`},
	{hx("line\nbreak"), 1, `"line", LF, "break" (binary encoding only)`},
	{"78", 128, `"x" × 128`},
	{"78", 129, `"x" × 129`},
	{"78", 240, `"x" × 240`},
	{"78", 241, `"x" × 241`},
	{hx("0123456789abcdef"), 64, `"0123456789abcdef" × 64 (1 KiB)`},
	{"ff", 1025, `byte 0xFF × 1025`},
	{hx("subordinate"), 400, `"subordinate" × 400 (4400 bytes)`},
}

// vectorTable renders the table as it appears in docs/PROTOCOL.md.
func vectorTable() string {
	var b strings.Builder
	b.WriteString("| key (hex) | repeat | description | xxh3 (hex) |")
	for _, n := range vectorNs {
		fmt.Fprintf(&b, " N=%d |", n)
	}
	b.WriteString("\n|---|---|---|---|")
	for range vectorNs {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, v := range vectorKeys {
		key := v.bytes()
		h := Hash(key)
		fmt.Fprintf(&b, "| `%s` | %d | %s | `%016x` |", v.hex, v.count, v.what, h)
		for _, n := range vectorNs {
			fmt.Fprintf(&b, " %d |", Owner(key, n))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func readVectorSection(t *testing.T) (doc []byte, start, end int) {
	t.Helper()
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatalf("reading the spec: %v", err)
	}
	start = bytes.Index(doc, []byte(vectorsBegin))
	end = bytes.Index(doc, []byte(vectorsEnd))
	if start < 0 || end < start {
		t.Fatalf("%s: no %s ... %s section", protocolDoc, vectorsBegin, vectorsEnd)
	}
	return doc, start + len(vectorsBegin), end
}

// TestVectors checks the table in docs/PROTOCOL.md against this package, by
// parsing each row and recomputing it independently of vectorKeys.
func TestVectors(t *testing.T) {
	doc, start, end := readVectorSection(t)
	if *update {
		out := append([]byte{}, doc[:start]...)
		out = append(out, "\n"+vectorTable()...)
		out = append(out, doc[end:]...)
		if err := os.WriteFile(protocolDoc, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	lines := strings.Split(strings.TrimSpace(string(doc[start:end])), "\n")
	if len(lines) < 2 {
		t.Fatalf("vector table is empty")
	}
	rows := 0
	for i, line := range lines[2:] {
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4+len(vectorNs) {
			t.Fatalf("row %d: %d cells, want %d: %q", i, len(cells), 4+len(vectorNs), line)
		}
		for j := range cells {
			cells[j] = strings.Trim(strings.TrimSpace(cells[j]), "`")
		}
		unit, err := hex.DecodeString(cells[0])
		if err != nil || len(unit) == 0 {
			t.Fatalf("row %d: bad key hex %q: %v", i, cells[0], err)
		}
		count, err := strconv.Atoi(cells[1])
		if err != nil || count < 1 {
			t.Fatalf("row %d: bad repeat %q", i, cells[1])
		}
		key := bytes.Repeat(unit, count)
		want, err := strconv.ParseUint(cells[3], 16, 64)
		if err != nil {
			t.Fatalf("row %d: bad hash %q", i, cells[3])
		}
		if got := Hash(key); got != want {
			t.Errorf("row %d (%s): Hash = %016x, table says %016x", i, cells[2], got, want)
		}
		for k, n := range vectorNs {
			want, err := strconv.Atoi(cells[4+k])
			if err != nil {
				t.Fatalf("row %d: bad owner %q", i, cells[4+k])
			}
			if got := Owner(key, n); got != want {
				t.Errorf("row %d (%s): Owner(N=%d) = %d, table says %d", i, cells[2], n, got, want)
			}
		}
		rows++
	}
	if rows < 20 {
		t.Errorf("table has %d rows, the spec promises at least 20", rows)
	}
	if got, want := strings.TrimSpace(string(doc[start:end])), strings.TrimSpace(vectorTable()); got != want {
		t.Errorf("table in %s differs from vectorKeys; run go test ./shard -run TestVectors -update", protocolDoc)
	}
}
