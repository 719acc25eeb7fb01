//go:build linux

package main

import (
	"math"
	"strings"
	"testing"
)

// issue9Set is a made-up set with the rows the summary reads.
func issue9Set(pin string, cpu map[string][4]float64, p99 map[string]float64, idle map[string]float64) *results {
	r := &results{
		Pin:     pin,
		Machine: machine{NProc: 2, Pinning: "none"},
		Config:  map[string]any{"workers": 2, "runs": 3, "duration": "5s", "idle_conns": 10000, "idle_runs": 3},
		Rows: []rowResult{{ID: "sub1", Label: "Subordinate, 1 worker"}, {ID: "subN", Label: "Subordinate, N workers, handoff"},
			{ID: "subN-relay", Label: "Subordinate, N workers, relay"}, {ID: "node", Label: "Node.js cluster, N workers"}},
		Workloads: []workload{{ID: "pingpong", Label: "ping-pong"}, {ID: "pipeline", Label: "pipelined, depth 16"},
			{ID: "connect", Label: "connect per request"}, {ID: "connect0", Label: "connect per request, close by reset"}},
	}
	if pin == "pinned" {
		r.Machine.Pinning = "servers on CPU 1, clients on CPU 0 (taskset)"
	}
	for row, v := range cpu {
		for i, w := range r.Workloads {
			if v[i] == 0 {
				continue
			}
			r.Cells = append(r.Cells, &cell{Row: row, Workload: w.ID,
				Median: summary{Runs: 3, RPS: 1000 / v[i], ServerUsPerReq: v[i], P99us: p99[row]}})
		}
	}
	for row, b := range idle {
		r.Idle = append(r.Idle, idleResult{Row: row, Conns: 10000, BytesPerConn: b})
	}
	return r
}

// line returns the line of md that starts with prefix.
func line(t *testing.T, md, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("no line starting %q in:\n%s", prefix, md)
	return ""
}

// TestIssue9Summary checks every target line's value, verdict and detail
// on made-up figures, for two pinning settings side by side, and that a
// row missing from one set is reported as not measured there.
func TestIssue9Summary(t *testing.T) {
	pinned := issue9Set("pinned",
		map[string][4]float64{ // ping-pong, pipelined, connect, connect0
			"sub1":       {10, 1, 40, 36},
			"subN":       {10.5, 1.2, 60, 72},
			"subN-relay": {15, 1.25, 100, 110},
			"node":       {15, 1.3, 180, 200},
		},
		map[string]float64{"sub1": 1000, "subN": 1400, "subN-relay": 6000},
		map[string]float64{"sub1": 1100, "subN": 1500, "subN-relay": 13000})
	unpinned := issue9Set("unpinned",
		map[string][4]float64{"sub1": {10, 1, 40, 40}, "subN": {11, 1.1, 64, 64}, "subN-relay": {25, 2, 180, 180}},
		map[string]float64{"sub1": 1000, "subN": 1500, "subN-relay": 9000},
		map[string]float64{"sub1": 1000, "subN": 1600})
	md := issue9Markdown([]*results{pinned, unpinned})

	for prefix, want := range map[string]string{
		"| server CPU per request, ping-pong: handoff ÷ 1 worker | ≤ 1.1 |":              "| 1.05 ✓ (10.5 ÷ 10.0 µs) | 1.10 ✓ (11.0 ÷ 10.0 µs) |",
		"| server CPU per request, ping-pong: relay ÷ 1 worker | ≤ 1.1 |":                "| 1.50 ✗ (15.0 ÷ 10.0 µs) | 2.50 ✗ (25.0 ÷ 10.0 µs) |",
		"| server CPU per request, pipelined: handoff ÷ 1 worker | ≤ 1.1 |":              "| 1.20 ✗ (1.20 ÷ 1.00 µs) | 1.10 ✓",
		"| server CPU per connection, connect per request: handoff ÷ 1 worker | ≤ 1.6 |": "| 1.50 ✓ (60.0 ÷ 40.0 µs) | 1.60 ✓",
		"| server CPU per connection, connect per request, reset: handoff ÷ 1 worker |":  "| 2.00 ✗ (72.0 ÷ 36.0 µs) |",
		"| p99 latency, ping-pong: handoff ÷ 1 worker | ≤ 1.5 |":                         "| 1.40 ✓ (1400 ÷ 1000 µs) | 1.50 ✓ (1500 ÷ 1000 µs) |",
		"| p99 latency, ping-pong: relay ÷ 1 worker | ≤ 1.5 |":                           "| 6.00 ✗",
		// 2 × 1500 − 1100 = 1900 per handed-off connection: 800 more than local.
		"| idle memory per handed-off connection − per local one | within 1 KiB |":  "| +800 B ✓ (1900 vs 1100 B) | +1200 B ✗ (2200 vs 1000 B) |",
		"| idle memory per relayed connection − per local one | within 1 KiB |":     "| +23800 B ✗ (24900 vs 1100 B) | not measured |",
		"| server CPU per request, ping-pong: handoff ÷ Node.js cluster | ≤ 0.75 |": "| 0.70 ✓ (10.5 ÷ 15.0 µs) | not measured |",
		"| server CPU per request, ping-pong: relay ÷ Node.js cluster | ≤ 0.75 |":   "| 1.00 ✗ (15.0 ÷ 15.0 µs) | not measured |",
	} {
		if l := line(t, md, prefix); !strings.Contains(l, want) {
			t.Errorf("line %q\nlacks %q", l, want)
		}
	}
	for _, want := range []string{
		"| figure | target | pinned | unpinned |",
		"about 50% of connections",
		"3 run(s) of 5s",
		"Pinned: servers on CPU 1, clients on CPU 0 (taskset).",
		"Unpinned: no CPU affinity",
		"while 10000 connections are held, per connection, median of 3 measurement(s)",
		"here 2 × (2 workers) − (1 worker)",
		// Forwarded against local: 2 × 10.5 − 10 = 11; 2 × 15 − 10 = 20.
		"| pinned | ping-pong, CPU µs | handoff | 10.0 | 10.5 | 11.0 | 1.10 | 0.95 |",
		"| pinned | ping-pong, CPU µs | relay | 10.0 | 15.0 | 20.0 | 2.00 | 0.67 |",
		"| pinned | pipelined, depth 16, CPU µs | handoff | 1.00 | 1.20 | 1.40 | 1.40 | 0.83 |",
		"| unpinned | connect per request, CPU µs | relay | 40.0 | 180 | 320 | 8.00 | 0.22 |",
		"| pinned | idle memory, bytes | relay | 1100 | 13000 | 24900 | 22.64 | – |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "| unpinned | idle memory, bytes | relay |") {
		t.Errorf("a memory line for a row without an idle figure:\n%s", md)
	}
}

// TestIssue9SummaryMissingRows checks a run without the Subordinate rows
// still renders, every figure not measured.
func TestIssue9SummaryMissingRows(t *testing.T) {
	r := issue9Set("pinned", map[string][4]float64{"node": {1, 1, 1, 1}}, nil, nil)
	md := issue9Markdown([]*results{r})
	if n := strings.Count(md, "not measured"); n != len(issue9Targets()) {
		t.Fatalf("%d lines not measured, want %d:\n%s", n, len(issue9Targets()), md)
	}
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "|") && (strings.Contains(l, "✓") || strings.Contains(l, "✗")) {
			t.Fatalf("a verdict without figures: %s", l)
		}
	}
	if strings.Contains(md, "Idle memory:") {
		t.Errorf("the idle-memory note without idle figures:\n%s", md)
	}
	if strings.Contains(md, "Forwarded against local") {
		t.Fatalf("an empty forwarded-against-local table:\n%s", md)
	}
}

func TestDerivedForwarded(t *testing.T) {
	for _, c := range []struct{ workers, mixed, local, want float64 }{
		{2, 8.85, 7.10, 10.60},  // issue 4's table: 2 × 8.85 − 7.10
		{2, 103.5, 41.8, 165.2}, // its connect per request
		{4, 7, 4, 8},            // 3/4 forwarded: (7 − 1) ÷ 0.75
	} {
		r := &results{Config: map[string]any{"workers": c.workers}}
		if got := derivedForwarded(c.mixed, c.local, r.forwardedShare()); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("N=%v: derived %v, want %v", c.workers, got, c.want)
		}
	}
	for _, w := range []any{1, 1.0, nil, "2"} {
		if f := (&results{Config: map[string]any{"workers": w}}).forwardedShare(); f != 0 {
			t.Errorf("workers %#v: share %v, want 0", w, f)
		}
	}
}

func TestMedianIdle(t *testing.T) {
	s := []idleResult{
		{Row: "x", BytesPerConn: 3000, RSSAfter: 3},
		{Row: "x", Error: "boom"},
		{Row: "x", BytesPerConn: 1000, RSSAfter: 1},
		{Row: "x", BytesPerConn: 2000, RSSAfter: 2},
	}
	m := medianIdle(s)
	if m.BytesPerConn != 2000 || m.RSSAfter != 2 || len(m.Runs) != 4 || m.Error != "" {
		t.Fatalf("median of 3 good of 4: %+v", m)
	}
	if m := medianIdle(s[2:]); m.BytesPerConn != 1000 {
		t.Fatalf("median of 2: %+v, want the lower", m)
	}
	if m := medianIdle(s[:1]); m.Runs != nil || m.BytesPerConn != 3000 {
		t.Fatalf("one measurement: %+v", m)
	}
	if m := medianIdle(s[1:2]); m.Error != "boom" {
		t.Fatalf("all failed: %+v", m)
	}
}

func TestPinModesAndIDs(t *testing.T) {
	base := config{BinDir: "b", Out: "o", Workers: 2, Runs: 1, Duration: 1, Conns: 1, ConnectConns: 1, Keys: 1, Depth: 1, Size: 1}
	names := func(ms []pinMode) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Name+":"+m.ServerCPUs+"/"+m.ClientCPUs)
		}
		return strings.Join(s, ",")
	}
	for _, c := range []struct {
		pin, server, client, want string
	}{
		{"", "1", "0", "pinned:1/0"},
		{"on", "", "", "unpinned:/"},
		{"off", "1", "0", "unpinned:/"},
		{"both", "1", "0", "pinned:1/0,unpinned:/"},
	} {
		cfg := base
		cfg.Pin, cfg.ServerCPUs, cfg.ClientCPUs = c.pin, c.server, c.client
		if err := cfg.applyDefaults(); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if got := names(cfg.pinModes()); got != c.want {
			t.Errorf("-pin %q %q/%q: %s, want %s", c.pin, c.server, c.client, got, c.want)
		}
	}
	for _, bad := range []func(c *config){
		func(c *config) { c.Pin = "both" }, // nothing to pin to
		func(c *config) { c.Pin = "sometimes" },
		func(c *config) { c.Rows = "sub1,subn-relay" },
		func(c *config) { c.Workloads = "pingpong,connect-rst" },
	} {
		cfg := base
		bad(&cfg)
		if err := cfg.applyDefaults(); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
	cfg := base
	cfg.Rows, cfg.Workloads = "sub1, subN,subN-relay", "connect0"
	if err := cfg.applyDefaults(); err != nil {
		t.Errorf("known IDs refused: %v", err)
	}
}

// TestIssue9Verdicts checks a value is judged as printed: a ratio to two
// decimals, memory to the byte.
func TestIssue9Verdicts(t *testing.T) {
	for _, c := range []struct {
		label string
		v     float64
		met   bool
	}{
		{"server CPU per request, ping-pong: handoff ÷ 1 worker", 1.104, true},
		{"server CPU per request, ping-pong: handoff ÷ 1 worker", 1.106, false},
		{"server CPU per connection, connect per request: handoff ÷ 1 worker", 1.6, true},
		{"p99 latency, ping-pong: handoff ÷ 1 worker", 1.51, false},
		{"idle memory per handed-off connection − per local one", 1024.4, true},
		{"idle memory per handed-off connection − per local one", -1024.4, true},
		{"idle memory per handed-off connection − per local one", 1025, false},
		{"server CPU per request, ping-pong: handoff ÷ Node.js cluster", 0.754, true},
		{"server CPU per request, ping-pong: handoff ÷ Node.js cluster", 0.756, false},
	} {
		found := false
		for _, tg := range issue9Targets() {
			if tg.label == c.label {
				found = true
				if got := tg.met(c.v); got != c.met {
					t.Errorf("%s at %v: met %v, want %v", c.label, c.v, got, c.met)
				}
			}
		}
		if !found {
			t.Errorf("no target %q", c.label)
		}
	}
}
