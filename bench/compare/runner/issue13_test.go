//go:build linux

package main

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// issue13Set is a made-up set of the suite's rows: cpu[row] is the server
// CPU per connection (connect) and per request (ping-pong).
func issue13Set(pin string, cpu map[string][2]float64) *results {
	r := &results{
		Pin: pin, Suite: "issue13",
		Machine:   machine{NProc: 2, Pinning: "none"},
		Config:    map[string]any{"workers": 2, "runs": 3, "duration": "3s", "size": 64},
		Workloads: []workload{{ID: "connect", Label: "connect per request"}, {ID: "pingpong", Label: "ping-pong"}},
	}
	if pin == "pinned" {
		r.Machine.Pinning = "servers on CPU 1, clients on CPU 0 (taskset)"
	}
	for _, row := range issue13Rows() {
		r.Rows = append(r.Rows, rowResult{ID: row.ID, Label: row.Label})
	}
	addCells(r, cpu)
	return r
}

// addCells adds to r a cell per row and workload of cpu (indexed as
// r.Workloads; 0: not measured).
func addCells(r *results, cpu map[string][2]float64) {
	for row, v := range cpu {
		for i, w := range r.Workloads {
			if v[i] > 0 {
				r.Cells = append(r.Cells, &cell{Row: row, Workload: w.ID, Median: summary{Runs: 3, RPS: 1000, ServerUsPerReq: v[i]}})
			}
		}
	}
}

// TestIssue13Summary checks every line's value, verdict and detail on
// made-up figures, pinned and unpinned side by side.
func TestIssue13Summary(t *testing.T) {
	pinned := issue13Set("pinned", map[string][2]float64{
		"frame-1": {40, 6}, "frame-N": {80, 7},
		"ip-1": {36, 6}, "ip-N": {60, 7.7},
		"header-1": {44, 6.6}, "header-N": {80, 7},
		"sni-1": {400, 12}, "sni-N": {390, 12.6},
		"tlsframe-N": {500, 14},
	})
	unpinned := issue13Set("unpinned", map[string][2]float64{"frame-1": {40, 6}, "ip-1": {40.1, 6}, "sni-N": {300, 10}, "tlsframe-N": {290, 10}})
	unpinned.Rows[3].Error = "serve: flag provided but not defined: -key-from"
	md := issue13Markdown([]*results{pinned, unpinned})
	for prefix, want := range map[string]string{
		"| server CPU per connection, connect per request: client-ip ÷ frame, 1 worker | ≤ 1 |":            "| 0.90 ✓ (36.0 ÷ 40.0 µs) | 1.00 ✓ (40.1 ÷ 40.0 µs) |",
		"| server CPU per connection, connect per request: client-ip ÷ frame, 2 workers | ≤ 1 |":           "| 0.75 ✓ (60.0 ÷ 80.0 µs) | not measured |",
		"| server CPU per connection, connect per request: http-header ÷ frame, 1 worker | ≤ 1 |":          "| 1.10 ✗ (44.0 ÷ 40.0 µs) | not measured |",
		"| server CPU per connection, connect per request: http-header ÷ frame, 2 workers |":               "| 1.00 ✓ (80.0 ÷ 80.0 µs) |",
		"| server CPU per connection, connect per request: sni ÷ frame, 1 worker | – (TLS against none) |": "| 10.00 (400 ÷ 40.0 µs) |",
		"| server CPU per connection, connect per request: sni, 2 workers ÷ sni, 1 worker | ≤ 1 |":         "| 0.97 ✓ (390 ÷ 400 µs) | not measured |",
		"| server CPU per connection, connect per request: TLS frame ÷ sni, 2 workers | ≥ 1 |":             "| 1.28 ✓ (500 ÷ 390 µs) | 0.97 ✗ (290 ÷ 300 µs) |",
		"| server CPU per request, ping-pong: client-ip ÷ frame, 2 workers | – |":                          "| 1.10 (7.70 ÷ 7.00 µs) |",
		"| server CPU per request, ping-pong: sni, 2 workers ÷ sni, 1 worker | – |":                        "| 1.05 (12.6 ÷ 12.0 µs) |",
		"| server CPU per request, ping-pong: TLS frame ÷ sni, 2 workers | – |":                            "| 1.11 (14.0 ÷ 12.6 µs) | 1.00 (10.0 ÷ 10.0 µs) |",
	} {
		if l := line(t, md, prefix); !strings.Contains(l, want) {
			t.Errorf("line %q\nlacks %q", l, want)
		}
	}
	for _, want := range []string{
		"### Issue 13 targets",
		"| figure | target | pinned | unpinned |",
		"N = 2",
		"3 run(s) of 3s per cell",
		"one 64-byte echo",
		"Pinned: servers on CPU 1, clients on CPU 0 (taskset).",
		"unpinned, Subordinate, key-from client-ip, N workers: not measured: serve: flag provided but not defined: -key-from",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	// Only lines with a target carry a verdict.
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| server CPU") && strings.Contains(l, " | – ") && (strings.Contains(l, "✓") || strings.Contains(l, "✗")) {
			t.Errorf("a verdict without a target: %s", l)
		}
	}
	if n := strings.Count(md, "\n| server CPU"); n != 2*(3*2+2) {
		t.Errorf("%d lines, want 16:\n%s", n, md)
	}
	if issue13Markdown(nil) != "" {
		t.Error("a summary of no set")
	}
}

// TestIssue13EndToEnd runs the issue-13 suite, pinned and unpinned, on
// stand-ins of `subordinate serve --key-from` and of the load generator
// (fakebench_test.go), on real sockets: every row starts and passes the
// probe of the real bench client, every cell is measured, and issue13.md
// holds a figure on every line.
func TestIssue13EndToEnd(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	serve := filepath.Join(t.TempDir(), "fake-subordinate")
	script := "#!/bin/sh\n" + fakeServeEnv + "=1 exec '" + self + "' \"$@\"\n"
	if err := os.WriteFile(serve, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	server, client := "1", "0"
	if runtime.NumCPU() < 2 {
		server = "0"
	}
	out := t.TempDir()
	c := config{BinDir: t.TempDir(), Out: out, Bench: self, Subordinate: serve, Issue13: true,
		Pin: "both", ServerCPUs: server, ClientCPUs: client,
		Workers: 2, Runs: 1, Duration: 300 * time.Millisecond, Conns: 4, ConnectConns: 2,
		Size: 32, Keys: 10, Depth: 4, Idle: 100, Node: "node", HAProxy: "haproxy", Command: "test"}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	if err := run(c, log, []string{fakeBenchEnv + "=1"}); err != nil {
		t.Fatal(err)
	}
	for _, pin := range []string{"pinned", "unpinned"} {
		b, err := os.ReadFile(filepath.Join(out, pin, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		var r results
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Suite != "issue13" || len(r.Idle) != 0 || len(r.Rows) != 9 {
			t.Fatalf("%s: suite %q, %d idle figures, rows %+v", pin, r.Suite, len(r.Idle), r.Rows)
		}
		for _, row := range r.Rows {
			if row.Error != "" {
				t.Errorf("%s: row %s: %s", pin, row.ID, row.Error)
			}
		}
		if len(r.Cells) != 9*2 {
			t.Fatalf("%s: %d cells, want 18", pin, len(r.Cells))
		}
		for _, cl := range r.Cells {
			if len(cl.Runs) != 1 || cl.Median.RPS <= 0 || cl.Median.Errors != 0 {
				t.Errorf("%s: cell %s/%s: %+v %v", pin, cl.Row, cl.Workload, cl.Median, cl.Errors)
			}
		}
		if _, err := os.Stat(filepath.Join(out, pin, "issue13.md")); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(filepath.Join(out, pin, "issue9.md")); err == nil {
			t.Errorf("%s: issue9.md from the issue-13 suite", pin)
		}
	}
	summary, err := os.ReadFile(filepath.Join(out, "issue13.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := string(summary)
	if strings.Contains(md, "not measured") || !strings.Contains(md, "| figure | target | pinned | unpinned |") {
		t.Errorf("issue13.md:\n%s", md)
	}
	table, err := os.ReadFile(filepath.Join(out, "table.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(table), md) || !strings.Contains(string(table), "| Subordinate, key-from sni over TLS, N workers |") {
		t.Errorf("table.md does not start with the summary and hold the rows:\n%s", table)
	}
}

// TestIssue13RowsServe starts each row of the suite from the real binary
// and probes it with the bench client, the way the suite does: the
// command lines it gives `subordinate serve` and the load generator work
// together.
func TestIssue13RowsServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real multi-process servers")
	}
	e := testEnv(t)
	e.cfg.Subordinate = filepath.Join(e.cfg.BinDir, "subordinate")
	for _, r := range issue13Rows() {
		t.Run(r.ID, func(t *testing.T) {
			s := startTestRow13(t, e, r)
			if !strings.Contains(s.note, "--workers") {
				t.Errorf("note %q", s.note)
			}
		})
	}
}

func startTestRow13(t *testing.T, e *env, r row) *server {
	t.Helper()
	s, err := e.startRow(r)
	if err != nil {
		t.Fatalf("start %s: %v", r.ID, err)
	}
	t.Cleanup(s.stop)
	return s
}

// TestIssue13Config: -issue13 selects its rows and workloads, and no idle
// memory.
func TestIssue13Config(t *testing.T) {
	c := config{BinDir: "b", Out: "o", Workers: 2, Runs: 1, Duration: 1, Conns: 1, ConnectConns: 1, Keys: 1, Depth: 1, Size: 1,
		Idle: 10000, Issue13: true}
	if err := c.applyDefaults(); err != nil {
		t.Fatal(err)
	}
	if c.Idle != 0 || c.Workloads != "connect,pingpong" || len(c.rowDefs()) != 9 {
		t.Errorf("idle %d, workloads %q, %d rows", c.Idle, c.Workloads, len(c.rowDefs()))
	}
	c.Rows = "sub1"
	if err := c.applyDefaults(); err == nil {
		t.Error("-issue13 accepted a peer row")
	}
	c.Rows, c.Issue13 = "sni-N", false
	if err := c.applyDefaults(); err == nil {
		t.Error("an issue-13 row accepted without -issue13")
	}
}
