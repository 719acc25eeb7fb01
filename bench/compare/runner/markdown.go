//go:build linux

package main

import (
	"fmt"
	"math"
	"strings"
)

// markdown renders the tables of BENCHMARKS.md: the provenance, one table
// per workload, the idle-memory table and the ratios of Subordinate to the
// peers.
func (r *results) markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Machine: %d CPUs (`nproc`), %s, Linux %s, %s", m.NProc, m.CPU, m.Kernel, m.Go)
	if m.HAProxy != "" {
		fmt.Fprintf(&b, ", %s", m.HAProxy)
	}
	if m.Node != "" {
		fmt.Fprintf(&b, ", Node.js %s", m.Node)
	}
	fmt.Fprintf(&b, ".  \nPinning: %s.  \nCommand: `%s`  \nDate: %s\n\n", m.Pinning, r.Command, r.Date)
	keys := "line preamble"
	if r.Suite == "issue13" {
		keys = "each row's key source (its label)"
	}
	fmt.Fprintf(&b, "Settings: N = %v; %v run(s) of %v per cell, median shown; %v-byte requests; %v keys, uniform; %s; %v connections (ping-pong, pipelined), %v concurrent clients (connect per request).\n\n",
		r.Config["workers"], r.Config["runs"], r.Config["duration"], r.Config["size"], r.Config["keys"], keys,
		r.Config["conns"], r.Config["connect_conns"])
	if r.HAProxyCheck != "" {
		fmt.Fprintf(&b, "HAProxy key check: %s.\n\n", r.HAProxyCheck)
	}
	for _, row := range r.Rows {
		if row.Error != "" {
			fmt.Fprintf(&b, "- %s: **not measured**: %s\n", row.Label, oneLine(row.Error))
		}
	}
	ref := "gnet"
	for _, w := range r.Workloads {
		fmt.Fprintf(&b, "\n#### %s\n\n", w.Label)
		b.WriteString("| server | req/s | vs raw gnet | p50 µs | p99 µs | server CPU µs/req | vs raw gnet | client CPU µs/req | errors |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		base := r.cell(ref, w.ID)
		for _, row := range r.Rows {
			c := r.cell(row.ID, w.ID)
			if c == nil || c.Median.Runs == 0 {
				continue
			}
			m := c.Median
			fmt.Fprintf(&b, "| %s | %.0f | %s | %.0f | %.0f | %.2f | %s | %.2f | %.0f |\n",
				row.Label, m.RPS, ratio(m.RPS, base, func(s summary) float64 { return s.RPS }),
				m.P50us, m.P99us, m.ServerUsPerReq,
				ratio(m.ServerUsPerReq, base, func(s summary) float64 { return s.ServerUsPerReq }),
				m.ClientUsPerReq, m.Errors)
		}
	}
	if len(r.Idle) > 0 {
		b.WriteString("\n#### Memory per idle connection\n\n")
		b.WriteString("RSS summed over the server's process tree, before and while the connections are held open (each sent its preamble and had a probe echoed).\n\n")
		b.WriteString("| server | idle conns | processes | RSS before | RSS held | bytes per conn |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|\n")
		for _, i := range r.Idle {
			if i.Error != "" {
				fmt.Fprintf(&b, "| %s | %d | | | | error: %s |\n", r.label(i.Row), i.Conns, oneLine(i.Error))
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %.1f MiB | %.1f MiB | %.0f |\n", r.label(i.Row), i.Conns, i.Procs,
				float64(i.RSSBefore)/(1<<20), float64(i.RSSAfter)/(1<<20), i.BytesPerConn)
		}
	}
	r.forwardedEstimate(&b)
	r.peerRatios(&b)
	return b.String()
}

// peerRatios writes two tables comparing Subordinate (N workers) with each
// other row, workload by workload, both read the same way: above 1 favours
// Subordinate. Throughput is Subordinate's req/s over the other's; CPU is the
// other's server CPU per request over Subordinate's.
func (r *results) peerRatios(b *strings.Builder) {
	const sub = "subN"
	if r.cell(sub, firstWorkload(r)) == nil {
		return
	}
	r.ratioTable(b, sub, "Throughput: Subordinate (N workers, handoff) ÷ each server",
		"Above 1: Subordinate serves more requests per second than that server.",
		func(s, o summary) float64 { return s.RPS / o.RPS })
	r.ratioTable(b, sub, "Server CPU per request: each server ÷ Subordinate (N workers, handoff)",
		"Above 1: Subordinate spends less CPU per request than that server.",
		func(s, o summary) float64 { return o.ServerUsPerReq / s.ServerUsPerReq })
}

func (r *results) ratioTable(b *strings.Builder, sub, title, note string, f func(s, o summary) float64) {
	fmt.Fprintf(b, "\n#### %s\n\n%s\n\n| server |", title, note)
	for _, w := range r.Workloads {
		fmt.Fprintf(b, " %s |", w.Label)
	}
	b.WriteString("\n|---|")
	for range r.Workloads {
		b.WriteString("--:|")
	}
	b.WriteString("\n")
	for _, row := range r.Rows {
		if row.ID == sub || row.Error != "" {
			continue
		}
		fmt.Fprintf(b, "| %s |", row.Label)
		for _, w := range r.Workloads {
			c, s := r.cell(row.ID, w.ID), r.cell(sub, w.ID)
			if c == nil || s == nil || c.Median.Runs == 0 || s.Median.Runs == 0 {
				b.WriteString(" – |")
				continue
			}
			v := f(s.Median, c.Median)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				b.WriteString(" – |")
				continue
			}
			fmt.Fprintf(b, " %.2f |", v)
		}
		b.WriteString("\n")
	}
}

func firstWorkload(r *results) string {
	if len(r.Workloads) == 0 {
		return ""
	}
	return r.Workloads[0].ID
}

func (r *results) cell(row, workload string) *cell {
	for _, c := range r.Cells {
		if c.Row == row && c.Workload == workload {
			return c
		}
	}
	return nil
}

func (r *results) label(id string) string {
	for _, row := range r.Rows {
		if row.ID == id {
			return row.Label
		}
	}
	return id
}

// ratio formats v relative to the reference cell's figure.
func ratio(v float64, base *cell, f func(summary) float64) string {
	if base == nil || base.Median.Runs == 0 || f(base.Median) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v/f(base.Median))
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// forwardedEstimate derives the memory of a forwarded idle connection from
// the Subordinate rows: with N workers and uniform keys about (N-1)/N of
// the connections are forwarded, with 1 worker none are. Each forwarding
// mode measured gets its own estimate.
func (r *results) forwardedEstimate(b *strings.Builder) {
	one := r.idle(rowOne)
	share := r.forwardedShare()
	if one == nil || share <= 0 {
		return
	}
	first := true
	for _, m := range forwardModes {
		n := r.idle(m.row)
		if n == nil {
			continue
		}
		if first {
			fmt.Fprintf(b, "\nSubordinate with 1 worker serves every connection locally; with N = %.0f workers and uniform keys about %.0f%% are forwarded. "+
				"Taking the difference as the cost of forwarding:\n\n", 1/(1-share), share*100)
			first = false
		}
		extra := derivedForwarded(n.BytesPerConn, one.BytesPerConn, share) - one.BytesPerConn
		fmt.Fprintf(b, "- %s: a forwarded idle connection costs about %.0f bytes more than a local one (%.0f + %.0f bytes in all, counting every worker).\n",
			r.label(m.row), extra, one.BytesPerConn, extra)
	}
}
