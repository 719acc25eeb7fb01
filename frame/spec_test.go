package frame

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// The examples and vectors in docs/PROTOCOL.md are generated from this
// package and checked against it here, so the spec a client author reads
// cannot drift from the code. Regenerate them with
//
//	go test ./frame -run TestSpec -update

var update = flag.Bool("update", false, "rewrite the generated sections of docs/PROTOCOL.md")

const protocolDoc = "../docs/PROTOCOL.md"

// specSections maps a section name (the markers are
// "<!-- NAME:begin -->" and "<!-- NAME:end -->") to its generator.
var specSections = map[string]func() string{
	"direct-vectors":    directVectors,
	"preamble-examples": preambleExamples,
	"header-example":    headerExample,
}

var directVectorCases = []struct {
	secret []byte
	shard  uint32
}{
	{[]byte("s3cret"), 0},
	{[]byte("s3cret"), 1},
	{[]byte("s3cret"), 7},
	{[]byte("s3cret"), 4294967295},
	{[]byte("correct horse battery staple"), 3},
	{[]byte{0x00, 0xff, 0x10, 0x80}, 42},
	{bytes.Repeat([]byte{0xaa}, 100), 5}, // longer than the SHA-256 block: hashed first
}

func directVectors() string {
	var b strings.Builder
	b.WriteString("| secret (hex) | shard | token (hex) |\n|---|---|---|\n")
	for _, c := range directVectorCases {
		tok := DirectToken(c.secret, c.shard)
		fmt.Fprintf(&b, "| `%x` | %d | `%x` |\n", c.secret, c.shard, tok[:])
	}
	return b.String()
}

func mustAppend(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func preambleExamples() string {
	var b strings.Builder
	b.WriteString("| preamble | bytes on the wire (hex) | as a Go string |\n|---|---|---|\n")
	row := func(what string, wire []byte) {
		fmt.Fprintf(&b, "| %s | `%x` | `%q` |\n", what, wire, wire)
	}
	row(`line, key "room1"`, mustAppend(AppendKey(nil, Line, []byte("room1"))))
	row(`binary, key "room1"`, mustAppend(AppendKey(nil, Binary, []byte("room1"))))
	row(`binary, key NUL "a" LF`, mustAppend(AppendKey(nil, Binary, []byte("\x00a\n"))))
	row(`line, direct to shard 7, secret "s3cret"`, mustAppend(AppendDirect(nil, Line, 7, []byte("s3cret"))))
	row(`binary, direct to shard 7, secret "s3cret"`, mustAppend(AppendDirect(nil, Binary, 7, []byte("s3cret"))))
	row(`error reply "key too long"`, AppendError(nil, "key too long"))
	return b.String()
}

var specHeader = &StreamHeader{
	Key:    []byte("room1"),
	Client: Addr{"tcp", "192.0.2.1:4000"},
	Local:  Addr{"tcp", "198.51.100.7:443"},
	TLS:    &TLSInfo{Version: tls.VersionTLS13, ServerName: "chat.example", ALPN: "h2", PeerSubject: "CN=alice"},
	Early:  []byte("hi\n"),
}

func headerExample() string {
	b := mustAppend(AppendStreamHeader(nil, specHeader))
	return "```text\n" + hex.Dump(b) + "```\n"
}

func sectionBounds(doc []byte, name string) (int, int, error) {
	begin, end := "<!-- "+name+":begin -->", "<!-- "+name+":end -->"
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		return 0, 0, fmt.Errorf("no %s ... %s section", begin, end)
	}
	return i + len(begin), j, nil
}

func TestSpec(t *testing.T) {
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	for name, gen := range specSections {
		i, j, err := sectionBounds(doc, name)
		if err != nil {
			t.Fatalf("%s: %v", protocolDoc, err)
		}
		want := gen()
		if *update {
			doc = append(doc[:i:i], append([]byte("\n"+want), doc[j:]...)...)
			continue
		}
		if got := strings.TrimSpace(string(doc[i:j])); got != strings.TrimSpace(want) {
			t.Errorf("%s: section %s differs from the code; run go test ./frame -run TestSpec -update\ngot:\n%s\nwant:\n%s",
				protocolDoc, name, got, want)
		}
	}
	// The largest header body with the default limits, quoted in the text.
	maxBody := (HeaderLimits{}).MaxBody()
	quoted := fmt.Sprintf("(with the defaults, %d,%03d)", maxBody/1000, maxBody%1000)
	if !bytes.Contains(doc, []byte(quoted)) {
		t.Errorf("%s does not say %q", protocolDoc, quoted)
	}
	if *update {
		if err := os.WriteFile(protocolDoc, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSpecDirectVectorsParse reads the direct-vector table back and checks
// each row with VerifyDirect, independently of directVectorCases.
func TestSpecDirectVectorsParse(t *testing.T) {
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatal(err)
	}
	i, j, err := sectionBounds(doc, "direct-vectors")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(doc[i:j])), "\n")
	rows := 0
	for _, line := range lines[2:] {
		var secretHex, tokHex string
		var shard uint32
		if _, err := fmt.Sscanf(strings.ReplaceAll(line, "`", ""), "| %s | %d | %s |", &secretHex, &shard, &tokHex); err != nil {
			t.Fatalf("row %q: %v", line, err)
		}
		secret, err1 := hex.DecodeString(secretHex)
		raw, err2 := hex.DecodeString(tokHex)
		if err1 != nil || err2 != nil || len(raw) != TokenSize {
			t.Fatalf("row %q: bad hex", line)
		}
		if DirectToken(secret, shard) != Token(raw) {
			t.Errorf("row %q: DirectToken differs", line)
		}
		rows++
	}
	if rows != len(directVectorCases) {
		t.Errorf("%d rows, want %d", rows, len(directVectorCases))
	}
}
