//go:build linux

package main

import (
	"fmt"
	"math"
	"strings"
)

// The issue-9 summary: the targets of issue 9 (hand each forwarded
// connection's socket to its owner) as ratios of figures measured in the
// same run, for every pinning setting measured, and the "forwarded against
// local" derivation of issue 4 for both forwarding modes.

// The rows the summary compares.
const (
	rowOne     = "sub1"       // 1 worker: every connection local
	rowHandoff = "subN"       // N workers, --forward handoff (the default)
	rowRelay   = "subN-relay" // N workers, --forward relay
	rowNode    = "node"       // Node.js cluster, N workers
)

// A figure is what one line of the summary reports for one set: a value,
// how it was obtained, and whether it was measured at all.
type figure struct {
	v      float64
	detail string
	ok     bool
}

// target is one line of the summary table.
type target struct {
	label string
	goal  string                  // as printed
	met   func(v float64) bool    // whether a value meets the goal
	eval  func(r *results) figure // the figure in one set
	show  func(f figure) string   // the value as printed
}

// The forwarding modes, each a row with N workers.
var forwardModes = []struct{ row, name, adj string }{
	{rowHandoff, "handoff", "handed-off"},
	{rowRelay, "relay", "relayed"},
}

// Workload names in the summary (the tables' labels are longer).
var shortWorkload = map[string]string{
	"pingpong": "ping-pong",
	"pipeline": "pipelined",
	"connect":  "connect per request",
	"connect0": "connect per request, reset",
}

// issue9Targets lists the lines of the summary table in order: each target
// of issue 9 for handoff, and the same figure for relay (today's path)
// beside it.
func issue9Targets() []target {
	// A ratio is judged as printed, to two decimals: 1.104 is 1.10, which
	// meets ≤ 1.1.
	le := func(limit float64) func(float64) bool {
		return func(v float64) bool { return math.Round(v*100)/100 <= limit }
	}
	ratio := func(f figure) string { return fmt.Sprintf("%.2f", f.v) }
	var ts []target
	cpu := func(wl, per, goal string, limit float64) {
		for _, m := range forwardModes {
			ts = append(ts, target{
				label: fmt.Sprintf("server CPU per %s, %s: %s ÷ 1 worker", per, shortWorkload[wl], m.name),
				goal:  goal, met: le(limit), show: ratio,
				eval: cpuRatio(m.row, rowOne, wl),
			})
		}
	}
	cpu("pingpong", "request", "≤ 1.1", 1.1)
	cpu("pipeline", "request", "≤ 1.1", 1.1)
	cpu("connect", "connection", "≤ 1.6", 1.6)
	cpu("connect0", "connection", "≤ 1.6", 1.6)
	for _, m := range forwardModes {
		ts = append(ts, target{
			label: "p99 latency, ping-pong: " + m.name + " ÷ 1 worker",
			goal:  "≤ 1.5", met: le(1.5), show: ratio,
			eval: p99Ratio(m.row, rowOne, "pingpong"),
		})
	}
	for _, m := range forwardModes {
		ts = append(ts, target{
			label: "idle memory per " + m.adj + " connection − per local one",
			goal:  "within 1 KiB", met: func(v float64) bool { return math.Abs(math.Round(v)) <= 1024 },
			show: func(f figure) string { return fmt.Sprintf("%+.0f B", f.v) },
			eval: idleExtra(m.row),
		})
	}
	for _, m := range forwardModes {
		ts = append(ts, target{
			label: "server CPU per request, ping-pong: " + m.name + " ÷ Node.js cluster",
			goal:  "≤ 0.75", met: le(0.75), show: ratio,
			eval: cpuRatio(m.row, rowNode, "pingpong"),
		})
	}
	return ts
}

// cpuRatio is row's server CPU per request over base's, under workload wl.
func cpuRatio(row, base, wl string) func(r *results) figure {
	return func(r *results) figure {
		a, b := r.median(row, wl), r.median(base, wl)
		if a == nil || b == nil || b.ServerUsPerReq <= 0 {
			return figure{}
		}
		return figure{v: a.ServerUsPerReq / b.ServerUsPerReq, ok: true,
			detail: fmt.Sprintf("%s ÷ %s µs", num(a.ServerUsPerReq), num(b.ServerUsPerReq))}
	}
}

// p99Ratio is row's p99 latency over base's, under workload wl.
func p99Ratio(row, base, wl string) func(r *results) figure {
	return func(r *results) figure {
		a, b := r.median(row, wl), r.median(base, wl)
		if a == nil || b == nil || b.P99us <= 0 {
			return figure{}
		}
		return figure{v: a.P99us / b.P99us, ok: true,
			detail: fmt.Sprintf("%.0f ÷ %.0f µs", a.P99us, b.P99us)}
	}
}

// idleExtra is how many more bytes an idle forwarded connection costs than
// a local one, derived from row (N workers) and 1 worker: see
// forwardedShare.
func idleExtra(row string) func(r *results) figure {
	return func(r *results) figure {
		n, one := r.idle(row), r.idle(rowOne)
		f := r.forwardedShare()
		if n == nil || one == nil || f <= 0 {
			return figure{}
		}
		fwd := derivedForwarded(n.BytesPerConn, one.BytesPerConn, f)
		return figure{v: fwd - one.BytesPerConn, ok: true,
			detail: fmt.Sprintf("%.0f vs %.0f B", fwd, one.BytesPerConn)}
	}
}

// forwardedShare is the share of connections a worker other than their
// owner accepts with N workers and uniform keys: (N-1)/N, since the owner
// of a key does not depend on which worker accepted it. 0 when N < 2 or
// unknown.
func (r *results) forwardedShare() float64 {
	var n float64
	switch w := r.Config["workers"].(type) {
	case float64: // read back from results.json
		n = w
	case int:
		n = float64(w)
	}
	if n < 2 {
		return 0
	}
	return (n - 1) / n
}

// derivedForwarded is the figure of a forwarded connection alone, given
// the mixed figure with N workers (a share f forwarded, the rest local) and
// the all-local figure with 1 worker: mixed = (1-f)·local + f·forwarded.
// For N = 2 it is 2 × mixed − local.
func derivedForwarded(mixed, local, f float64) float64 {
	return (mixed - (1-f)*local) / f
}

// median is the median summary of a measured cell, nil if there is none.
func (r *results) median(row, wl string) *summary {
	c := r.cell(row, wl)
	if c == nil || c.Median.Runs == 0 {
		return nil
	}
	return &c.Median
}

// idle is a row's idle-memory result, nil if it was not measured.
func (r *results) idle(row string) *idleResult {
	for i := range r.Idle {
		if r.Idle[i].Row == row && r.Idle[i].Error == "" && r.Idle[i].Conns > 0 {
			return &r.Idle[i]
		}
	}
	return nil
}

// pinName is "pinned" or "unpinned".
func pinName(r *results) string {
	if r.Pin != "" {
		return r.Pin
	}
	if r.Machine.Pinning == "" || r.Machine.Pinning == "none" {
		return "unpinned"
	}
	return "pinned"
}

// pinTitle is pinName capitalised, with what it means, for a heading.
func pinTitle(r *results) string {
	n := pinName(r)
	return strings.ToUpper(n[:1]) + n[1:] + ": " + pinning(r)
}

func pinning(r *results) string {
	if r.Machine.Pinning == "" || r.Machine.Pinning == "none" {
		return "no CPU affinity, the scheduler places servers and clients"
	}
	return r.Machine.Pinning
}

// issue9Markdown renders the issue-9 summary of sets (one per pinning
// setting, each measured in one run): the targets with a value and a
// verdict per set, then the forwarded-against-local derivation.
func issue9Markdown(sets []*results) string {
	var b strings.Builder
	if len(sets) == 0 {
		return ""
	}
	first := sets[0]
	workers := first.Config["workers"]
	b.WriteString("### Issue 9 targets: N workers against 1 worker, in one run\n\n")
	fmt.Fprintf(&b, "N = %v workers, uniform keys: about %.0f%% of connections are accepted by a worker that does not own their key. "+
		"handoff is `serve --forward handoff` (the default: the accepting worker passes the socket to the owner), "+
		"relay is `serve --forward relay` (it copies the bytes over the mesh); 1 worker serves every connection locally. "+
		"Every figure comes from medians over %v run(s) of %v per cell, rows measured in the same run, interleaved; "+
		"✓ meets the target, ✗ misses it. The targets are the hand-off's; the relay lines show today's path beside it.\n\n",
		workers, first.forwardedShare()*100, first.Config["runs"], first.Config["duration"])
	b.WriteString("| figure | target |")
	for _, r := range sets {
		fmt.Fprintf(&b, " %s |", pinName(r))
	}
	b.WriteString("\n|---|---|")
	for range sets {
		b.WriteString("--:|")
	}
	b.WriteString("\n")
	for _, t := range issue9Targets() {
		fmt.Fprintf(&b, "| %s | %s |", t.label, t.goal)
		for _, r := range sets {
			f := t.eval(r)
			if !f.ok {
				b.WriteString(" not measured |")
				continue
			}
			verdict := " ✗"
			if t.met(f.v) {
				verdict = " ✓"
			}
			fmt.Fprintf(&b, " %s%s (%s) |", t.show(f), verdict, f.detail)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, r := range sets {
		fmt.Fprintf(&b, "%s: %s.  \n", strings.ToUpper(pinName(r)[:1])+pinName(r)[1:], pinning(r))
	}
	if len(first.Idle) > 0 {
		fmt.Fprintf(&b, "Idle memory: growth of RSS summed over the server's processes while %v connections are held, per connection, median of %v measurement(s) on fresh servers; "+
			"the figure of a forwarded connection alone is derived as below.\n", first.Config["idle_conns"], first.Config["idle_runs"])
	}
	forwardedTable(&b, sets)
	return b.String()
}

// forwardedTable writes issue 4's "forwarded against local" table for both
// forwarding modes and every set: each workload's server CPU per request
// (and idle memory per connection) with 1 worker and with N workers, and
// the figure of a forwarded connection alone derived from the two. Nothing
// when no set has both a 1-worker and an N-worker figure.
func forwardedTable(b *strings.Builder, sets []*results) {
	var t strings.Builder
	for _, r := range sets {
		f := r.forwardedShare()
		if f <= 0 {
			continue
		}
		for _, w := range r.Workloads {
			one := r.median(rowOne, w.ID)
			for _, m := range forwardModes {
				n := r.median(m.row, w.ID)
				if one == nil || n == nil || one.ServerUsPerReq <= 0 || one.RPS <= 0 {
					continue
				}
				fwd := derivedForwarded(n.ServerUsPerReq, one.ServerUsPerReq, f)
				fmt.Fprintf(&t, "| %s | %s, CPU µs | %s | %s | %s | %s | %.2f | %.2f |\n", pinName(r), w.Label, m.name,
					num(one.ServerUsPerReq), num(n.ServerUsPerReq), num(fwd), fwd/one.ServerUsPerReq, n.RPS/one.RPS)
			}
		}
		one := r.idle(rowOne)
		for _, m := range forwardModes {
			n := r.idle(m.row)
			if one == nil || n == nil || one.BytesPerConn <= 0 {
				continue
			}
			fwd := derivedForwarded(n.BytesPerConn, one.BytesPerConn, f)
			fmt.Fprintf(&t, "| %s | idle memory, bytes | %s | %.0f | %.0f | %.0f | %.2f | – |\n", pinName(r), m.name,
				one.BytesPerConn, n.BytesPerConn, fwd, fwd/one.BytesPerConn)
		}
	}
	if t.Len() == 0 {
		return
	}
	first := sets[0]
	f := first.forwardedShare()
	b.WriteString("\n### Forwarded against local\n\n")
	fmt.Fprintf(b, "With N = %v workers and uniform keys a share f = (N−1)/N = %.2f of the connections is forwarded and the rest is local, "+
		"so the figure of a forwarded connection alone is (N workers − (1 − f) × 1 worker) ÷ f", first.Config["workers"], f)
	if f == 0.5 {
		b.WriteString(", here 2 × (2 workers) − (1 worker)")
	}
	b.WriteString(". CPU figures are server CPU µs per request (per connection for connect per request); memory is bytes per idle connection.\n\n")
	b.WriteString("| pinning | figure | forward | 1 worker | N workers | forwarded only (derived) | forwarded ÷ local | req/s, N workers ÷ 1 |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|\n")
	b.WriteString(t.String())
}

// num prints a CPU figure with three significant digits or so, like the
// issue-4 table: 7.10, 10.6, 165.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
