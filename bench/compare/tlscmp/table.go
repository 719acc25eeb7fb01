//go:build linux

package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// cell is every run of one workload against one server.
type cell struct {
	rps      []float64 // operations per second
	cpu      []float64 // server CPU µs per operation
	frontCPU []float64 // the same for HAProxy alone, without its backends
	client   []float64 // the load generator's CPU µs per operation
	resumed  []float64 // share of the handshakes that resumed, 0 to 1
	errors   int64
	reason   string // the first error, as text
}

// add records one run.
func (c *cell) add(rps, cpuUS, frontUS, clientUS, resumed float64) {
	c.rps = append(c.rps, rps)
	c.client = append(c.client, clientUS)
	c.cpu = append(c.cpu, cpuUS)
	c.frontCPU = append(c.frontCPU, frontUS)
	c.resumed = append(c.resumed, resumed)
}

// table is what one setting (pinned or unpinned) measured.
type table struct {
	heading   string
	workloads []workload
	servers   []string
	cells     [][]cell // [workload][server]
	base      int      // the crypto/tls row
	haproxy   int      // the HAProxy row, or -1
	backends  int      // HAProxy's backends, for the note on HAProxy alone
	notes     []string // lines after the table
}

// write prints t as markdown: a heading line, the table, the notes.
func (t *table) write(w io.Writer) {
	fmt.Fprintf(w, "%s\n\n", t.heading)
	fmt.Fprintf(w, "| workload | server | per second | × crypto/tls | × HAProxy | server CPU µs per op | × crypto/tls | × HAProxy | resumed |\n")
	fmt.Fprintf(w, "|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	var errs []string
	for wi, wl := range t.workloads {
		row := t.cells[wi]
		for si, name := range t.servers {
			c := row[si]
			rps, cpu := median(c.rps), median(c.cpu)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", wl.name, name,
				num(rps, 0), ratio(rps, t.median(row, t.base, false)), ratio(rps, t.median(row, t.haproxy, false)),
				num(cpu, 1), ratio(cpu, t.median(row, t.base, true)), ratio(cpu, t.median(row, t.haproxy, true)),
				resumedText(wl, c))
			if c.errors > 0 {
				errs = append(errs, fmt.Sprintf("%s, %s: %d errors (%s)", name, wl.name, c.errors, c.reason))
			}
		}
	}
	fmt.Fprintln(w)
	if t.haproxy >= 0 {
		var parts []string
		for wi, wl := range t.workloads {
			parts = append(parts, fmt.Sprintf("%s %s", wl.short(), num(median(t.cells[wi][t.haproxy].frontCPU), 1)))
		}
		fmt.Fprintf(w, "HAProxy's own process, without its %d backends, server CPU µs per op: %s.\n", t.backends, strings.Join(parts, "; "))
	}
	var load []string
	for wi, wl := range t.workloads {
		var parts []string
		for si, name := range t.servers {
			parts = append(parts, fmt.Sprintf("%s %s", name, num(median(t.cells[wi][si].client), 1)))
		}
		load = append(load, fmt.Sprintf("%s: %s", wl.short(), strings.Join(parts, ", ")))
	}
	fmt.Fprintf(w, "The load generator's own CPU µs per op (a rate is bounded by it where it is busy all the time: 1e6 / its µs per op on its one CPU, pinned): %s.\n", strings.Join(load, "; "))
	for _, n := range t.notes {
		fmt.Fprintln(w, n)
	}
	if len(errs) > 0 {
		fmt.Fprintf(w, "Errors: %s.\n", strings.Join(errs, "; "))
	}
	fmt.Fprintln(w)
}

// median is the median of row[i]'s throughput or CPU, or 0 when row i is
// absent.
func (t *table) median(row []cell, i int, cpu bool) float64 {
	if i < 0 || i >= len(row) {
		return 0
	}
	if cpu {
		return median(row[i].cpu)
	}
	return median(row[i].rps)
}

// resumedText is the median share of resumed handshakes of a handshake
// workload, "–" for the others.
func resumedText(wl workload, c cell) string {
	if !wl.handshakes() || len(c.resumed) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*median(c.resumed))
}

// num formats a median, "–" when there is none.
func num(v float64, prec int) string {
	if v <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// ratio formats v/base, "–" when either is missing.
func ratio(v, base float64) string {
	if v <= 0 || base <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", v/base)
}

// median is the middle value (the upper one of an even count), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
