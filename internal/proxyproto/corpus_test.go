package proxyproto

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var writeCorpus = flag.Bool("corpus", false, "write the fuzz seed corpus under testdata/fuzz")

// fuzzReadSeeds: every round-trip header, whole and cut short, and the
// malformed inputs of TestReadErrors' kinds.
func fuzzReadSeeds() [][]byte {
	var seeds [][]byte
	for _, h := range roundTripCases() {
		b, err := h.Append(nil)
		if err != nil {
			panic(err)
		}
		seeds = append(seeds, b, b[:len(b)-1])
	}
	good, _ := (&Header{Local: true}).Append(nil)
	sig := good[:12]
	seeds = append(seeds,
		[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
		append(append([]byte{}, sig...), 0x11, 0, 0, 0),                            // version 1
		append(append([]byte{}, sig...), 0x21, 0x11, 0, 4, 1, 2, 3, 4),             // short tcp4
		append(append([]byte{}, sig...), 0x21, 0x00, 0, 2, 0xe0, 0),                // bad tlv
		append(append([]byte{}, sig...), 0x21, 0x31, 0, 216),                       // unix, cut
		append(append([]byte{}, sig...), 0x21, 0x21, 0xff, 0xff, 0x20, 0x01, 0x0d), // ipv6, huge length
	)
	return seeds
}

// TestWriteFuzzCorpus writes FuzzRead's seed corpus when run with
// -corpus. Without the flag it checks that the corpus is on disk.
func TestWriteFuzzCorpus(t *testing.T) {
	seeds := fuzzReadSeeds()
	dir := filepath.Join("testdata", "fuzz", "FuzzRead")
	if !*writeCorpus {
		ents, err := os.ReadDir(dir)
		if err != nil || len(ents) < len(seeds) {
			t.Errorf("%s: %d seeds on disk, want %d (go test ./internal/proxyproto -run TestWriteFuzzCorpus -corpus)",
				dir, len(ents), len(seeds))
		}
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, b := range seeds {
		name := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		if err := os.WriteFile(name, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
