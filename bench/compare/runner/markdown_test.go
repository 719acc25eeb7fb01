//go:build linux

package main

import (
	"strings"
	"testing"
)

// TestMarkdownRatios checks the ratio tables and the forwarded-memory
// estimate on made-up figures.
func TestMarkdownRatios(t *testing.T) {
	r := &results{
		Command: "cmd", Date: "today",
		Machine: machine{NProc: 2, CPU: "cpu", Pinning: "none"},
		Config:  map[string]any{"workers": 2},
		Rows: []rowResult{{ID: "gnet", Label: "raw gnet"}, {ID: "sub1", Label: "sub one"},
			{ID: "subN", Label: "sub N"}, {ID: "node", Label: "node", Error: "no node"}},
		Workloads: []workload{{ID: "pingpong", Label: "ping-pong"}},
		Cells: []*cell{
			{Row: "gnet", Workload: "pingpong", Median: summary{Runs: 3, RPS: 100, ServerUsPerReq: 4}},
			{Row: "sub1", Workload: "pingpong", Median: summary{Runs: 3, RPS: 40, ServerUsPerReq: 5}},
			{Row: "subN", Workload: "pingpong", Median: summary{Runs: 3, RPS: 50, ServerUsPerReq: 8}},
		},
		Idle: []idleResult{{Row: "sub1", Conns: 10, BytesPerConn: 1000}, {Row: "subN", Conns: 10, BytesPerConn: 2000}},
	}
	md := r.markdown()
	for _, want := range []string{
		"| sub N | 50 | 0.50× |",                  // req/s vs raw gnet
		"| 8.00 | 2.00× |",                        // CPU vs raw gnet
		"| raw gnet | 0.50 |\n| sub one | 1.25 |", // throughput: sub N / others
		"| raw gnet | 0.50 |\n| sub one | 0.62 |", // CPU: gnet/subN = 4/8, sub1: 5/8
		"about 50% are forwarded",
		"costs about 2000 bytes more",
		"- node: **not measured**: no node",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
