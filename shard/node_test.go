package shard

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// nodeKeys are the keys of the growth and spread tests: "key-0" ...
func nodeKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte("key-" + strconv.Itoa(i))
	}
	return keys
}

// TestPlaceOneNode: a single node maps keys exactly as one machine does.
func TestPlaceOneNode(t *testing.T) {
	for _, key := range nodeKeys(20000) {
		for _, w := range []int{1, 2, 3, 8, 64} {
			if n, got := Place(key, 1, w); n != 0 || got != Owner(key, w) {
				t.Fatalf("Place(%q, 1, %d) = %d, %d; want 0, %d", key, w, n, got, Owner(key, w))
			}
		}
	}
}

// TestPlaceGrowth: appending node M to M nodes moves only the keys the new
// node takes, about 1/(M+1) of them, and no key changes its worker.
func TestPlaceGrowth(t *testing.T) {
	const workers = 4
	keys := nodeKeys(100000)
	before := make([]int, len(keys))
	for i, k := range keys {
		before[i], _ = Place(k, 1, workers)
	}
	for m := 1; m < 12; m++ {
		moved := 0
		for i, k := range keys {
			node, worker := Place(k, m+1, workers)
			if worker != Owner(k, workers) {
				t.Fatalf("%q: worker %d with %d nodes, want %d", k, worker, m+1, Owner(k, workers))
			}
			if node != before[i] {
				if node != m {
					t.Fatalf("%q moved from node %d to %d when node %d was added", k, before[i], node, m)
				}
				moved++
			}
			before[i] = node
		}
		share, want := float64(moved)/float64(len(keys)), 1/float64(m+1)
		if share < 0.9*want || share > 1.1*want {
			t.Errorf("%d → %d nodes: %.4f of the keys moved, want about %.4f", m, m+1, share, want)
		}
	}
}

// TestPlaceSpread: with 3 nodes of 4 workers, every worker of every node
// gets about a twelfth of the keys: the node and worker hashes are
// independent.
func TestPlaceSpread(t *testing.T) {
	const nodes, workers = 3, 4
	keys := nodeKeys(120000)
	var count [nodes][workers]int
	for _, k := range keys {
		n, w := Place(k, nodes, workers)
		count[n][w]++
	}
	want := float64(len(keys)) / (nodes * workers)
	for n := range count {
		for w, c := range count[n] {
			if float64(c) < 0.93*want || float64(c) > 1.07*want {
				t.Errorf("node %d worker %d: %d keys, want about %.0f", n, w, c, want)
			}
		}
	}
}

// The node test vectors live in docs/PROTOCOL.md between these markers;
// "go test ./shard -run TestNodeVectors -update" rewrites them.
const (
	nodeVectorsBegin = "<!-- node-vectors:begin -->"
	nodeVectorsEnd   = "<!-- node-vectors:end -->"
)

// nodeVectorMs are the node counts in the node table's columns.
var nodeVectorMs = []int{2, 3, 5, 16}

// nodeVectorTable renders the node table as it appears in docs/PROTOCOL.md.
func nodeVectorTable() string {
	var b strings.Builder
	b.WriteString("| key (hex) | repeat | description | xxh3, seed 0x6e6f6465 (hex) |")
	for _, m := range nodeVectorMs {
		fmt.Fprintf(&b, " M=%d |", m)
	}
	b.WriteString("\n|---|---|---|---|")
	for range nodeVectorMs {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, v := range vectorKeys {
		key := v.bytes()
		fmt.Fprintf(&b, "| `%s` | %d | %s | `%016x` |", v.hex, v.count, v.what, NodeHash(key))
		for _, m := range nodeVectorMs {
			n, _ := Place(key, m, 1)
			fmt.Fprintf(&b, " %d |", n)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestNodeVectors checks the node table in docs/PROTOCOL.md against this
// package, recomputing each row from its cells.
func TestNodeVectors(t *testing.T) {
	doc, err := os.ReadFile(protocolDoc)
	if err != nil {
		t.Fatalf("reading the spec: %v", err)
	}
	start := bytes.Index(doc, []byte(nodeVectorsBegin))
	end := bytes.Index(doc, []byte(nodeVectorsEnd))
	if start < 0 || end < start {
		t.Fatalf("%s: no %s ... %s section", protocolDoc, nodeVectorsBegin, nodeVectorsEnd)
	}
	start += len(nodeVectorsBegin)
	if *update {
		out := append([]byte{}, doc[:start]...)
		out = append(out, "\n"+nodeVectorTable()...)
		out = append(out, doc[end:]...)
		if err := os.WriteFile(protocolDoc, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	lines := strings.Split(strings.TrimSpace(string(doc[start:end])), "\n")
	rows := 0
	for i, line := range lines[min(2, len(lines)):] {
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4+len(nodeVectorMs) {
			t.Fatalf("row %d: %d cells, want %d: %q", i, len(cells), 4+len(nodeVectorMs), line)
		}
		for j := range cells {
			cells[j] = strings.Trim(strings.TrimSpace(cells[j]), "`")
		}
		unit, err := hex.DecodeString(cells[0])
		count, cerr := strconv.Atoi(cells[1])
		want, herr := strconv.ParseUint(cells[3], 16, 64)
		if err != nil || cerr != nil || herr != nil || len(unit) == 0 || count < 1 {
			t.Fatalf("row %d: bad cells %q", i, cells[:4])
		}
		key := bytes.Repeat(unit, count)
		if got := NodeHash(key); got != want {
			t.Errorf("row %d (%s): NodeHash = %016x, table says %016x", i, cells[2], got, want)
		}
		for k, m := range nodeVectorMs {
			want, err := strconv.Atoi(cells[4+k])
			if err != nil {
				t.Fatalf("row %d: bad node %q", i, cells[4+k])
			}
			if got, _ := Place(key, m, 1); got != want {
				t.Errorf("row %d (%s): node with M=%d is %d, table says %d", i, cells[2], m, got, want)
			}
		}
		rows++
	}
	if rows < 20 {
		t.Errorf("node table has %d rows, want at least 20", rows)
	}
	if got, want := strings.TrimSpace(string(doc[start:end])), strings.TrimSpace(nodeVectorTable()); got != want {
		t.Errorf("node table in %s differs from vectorKeys; run go test ./shard -run TestNodeVectors -update", protocolDoc)
	}
}
