//go:build linux

package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// issue14Set is a made-up set of the suite's rows: cpu[row] is the server
// CPU per connection (connect) and per request (ping-pong).
func issue14Set(pin string, cpu map[string][2]float64) *results {
	r := issue13Set(pin, nil)
	r.Suite, r.Rows = "issue14", nil
	for _, row := range issue14Rows() {
		r.Rows = append(r.Rows, rowResult{ID: row.ID, Label: row.Label})
	}
	addCells(r, cpu)
	return r
}

// TestIssue14Summary checks the lines' values, verdicts and details on
// made-up figures.
func TestIssue14Summary(t *testing.T) {
	pinned := issue14Set("pinned", map[string][2]float64{
		"one": {30, 4}, "same": {50, 5}, "relay": {80, 8}, "cluster": {90, 6}, "haproxy": {100, 16},
	})
	unpinned := issue14Set("unpinned", map[string][2]float64{"cluster": {110, 9}, "haproxy": {100, 18}})
	md := issue14Markdown([]*results{pinned, unpinned})
	for prefix, want := range map[string]string{
		"| server CPU per connection, connect per request: 2 nodes ÷ HAProxy over 2 servers | ≤ 1 |": "| 0.90 ✓ (90.0 ÷ 100 µs) | 1.10 ✗ (110 ÷ 100 µs) |",
		"| server CPU per request, ping-pong: 2 nodes ÷ HAProxy over 2 servers | ≤ 1 |":              "| 0.38 ✓ (6.00 ÷ 16.0 µs) | 0.50 ✓ (9.00 ÷ 18.0 µs) |",
		"| server CPU per connection, connect per request: 2 nodes ÷ 1 node of 2 workers | – |":      "| 1.80 (90.0 ÷ 50.0 µs) | not measured |",
		"| server CPU per request, ping-pong: 2 nodes ÷ 1 node of 2 workers relaying":                "| 0.75 (6.00 ÷ 8.00 µs) |",
		"| server CPU per connection, connect per request: 1 node of 2 workers ÷ 1 worker | – |":     "| 1.67 (50.0 ÷ 30.0 µs) |",
	} {
		if l := line(t, md, prefix); !strings.Contains(l, want) {
			t.Errorf("line %q\nlacks %q", l, want)
		}
	}
	for _, want := range []string{"### Issue 14 targets", "| figure | target | pinned | unpinned |", "every client connecting to node 0"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	if n := strings.Count(md, "\n| server CPU"); n != 2*5 {
		t.Errorf("%d lines, want 10:\n%s", n, md)
	}
}

// TestIssue14RowsServe starts every row of the suite with the real
// binary: the cluster's nodes link (its probe echoes keys of both) and
// HAProxy routes to Subordinate servers.
func TestIssue14RowsServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real multi-process servers")
	}
	e := testEnv(t)
	e.cfg.Subordinate = filepath.Join(e.cfg.BinDir, "subordinate")
	for _, r := range issue14Rows() {
		t.Run(r.ID, func(t *testing.T) {
			if _, err := exec.LookPath("haproxy"); err != nil && r.ID == row14HAProxy {
				t.Skip("haproxy not installed (bench/compare/run.sh installs it)")
			}
			startTestRow13(t, e, r)
		})
	}
}

// TestIssue14Config: -issue14 selects its rows and workloads, no idle
// memory, and not with -issue13.
func TestIssue14Config(t *testing.T) {
	c := config{BinDir: "b", Out: "o", Workers: 2, Runs: 1, Duration: 1, Conns: 1, ConnectConns: 1, Keys: 1, Depth: 1, Size: 1,
		Idle: 10000, Issue14: true}
	if err := c.applyDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.Idle != 0 || c.Workloads != "connect,pingpong" || len(c.rowDefs()) != 5 || suiteName(c) != "issue14" {
		t.Errorf("idle %d, workloads %q, %d rows, suite %q", c.Idle, c.Workloads, len(c.rowDefs()), suiteName(c))
	}
	c.Issue13 = true
	if err := c.applyDefaults(); err == nil {
		t.Error("-issue13 and -issue14 together accepted")
	}
}
