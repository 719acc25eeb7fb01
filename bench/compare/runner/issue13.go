//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/subordinate/subordinate/bench"
)

// The issue-13 suite (-issue13): what routing by a key found without a
// preamble costs against the preamble, as ratios of server CPU measured in
// the same run. Every row is `subordinate serve --handler echo`; the load
// generator presents each connection's key the way the row reads it
// (bench --key-from).

// issue13Workloads are the suite's default workloads: server CPU per
// connection (connect per request) and per request on established
// connections (ping-pong).
const issue13Workloads = "connect,pingpong"

// The key sources compared, as serve and bench spell them.
const (
	headerSource = "http-header:X-Key"
)

// A source13 is one way of taking keys: a pair of rows, 1 and N workers.
type source13 struct {
	id      string // row ID prefix
	name    string // in the summary
	keyFrom string // --key-from; "" is the preamble, serve's default
	tls     bool   // a tls:// listener
}

var (
	srcFrame    = source13{id: "frame", name: "frame", keyFrom: ""}
	srcClientIP = source13{id: "ip", name: "client-ip", keyFrom: "client-ip"}
	srcHeader   = source13{id: "header", name: "http-header", keyFrom: headerSource}
	srcSNI      = source13{id: "sni", name: "sni", keyFrom: "sni", tls: true}
	srcTLSFrame = source13{id: "tlsframe", name: "TLS frame", keyFrom: "", tls: true}
)

// row13 is the row ID of a source with 1 worker ("1") or N ("N").
func row13(s source13, n string) string { return s.id + "-" + n }

// issue13Rows lists the suite's rows: each source with 1 and with N
// workers, and the preamble over TLS with N workers, for reference.
func issue13Rows() []row {
	var rs []row
	for _, s := range []source13{srcFrame, srcClientIP, srcHeader, srcSNI} {
		rs = append(rs, row{ID: row13(s, "1"), Label: label13(s, "1 worker"), start: startKeyFrom(s, 1)},
			row{ID: row13(s, "N"), Label: label13(s, "N workers"), start: startKeyFrom(s, 0)})
	}
	return append(rs, row{ID: row13(srcTLSFrame, "N"), Label: label13(srcTLSFrame, "N workers"), start: startKeyFrom(srcTLSFrame, 0)})
}

func label13(s source13, workers string) string {
	how := "key-from " + s.keyFrom
	if s.keyFrom == "" {
		how = "preamble"
	}
	if s.tls {
		how += " over TLS"
	}
	return "Subordinate, " + how + ", " + workers
}

// suiteName is the Suite of c's results.
func suiteName(c config) string {
	switch {
	case c.Issue13:
		return "issue13"
	case c.Issue14:
		return "issue14"
	}
	return ""
}

// summaryOf returns the summary file of a suite and what renders it.
func summaryOf(suite string) (string, func([]*results) string) {
	switch suite {
	case "issue13":
		return "issue13.md", issue13Markdown
	case "issue14":
		return "issue14.md", issue14Markdown
	}
	return "issue9.md", issue9Markdown
}

// startKeyFrom starts `subordinate serve` taking keys from s, with workers
// processes (0: N), and tells the load generator to present keys so.
func startKeyFrom(s source13, workers int) func(e *env, addr string) (*server, error) {
	return func(e *env, addr string) (*server, error) {
		w := workers
		if w == 0 {
			w = e.cfg.Workers
		}
		flags := []string{"--workers", strconv.Itoa(w), "--handler", "echo"}
		var benchArgs []string
		if s.keyFrom == "" {
			flags = append(flags, "--frame", "line")
		} else {
			flags = append(flags, "--key-from", s.keyFrom)
			benchArgs = append(benchArgs, "--key-from", s.keyFrom)
		}
		listen := "tcp://" + addr
		var tlsCfg *tls.Config
		if s.tls {
			cert, err := e.testCert()
			if err != nil {
				return nil, err
			}
			listen = "tls://" + addr
			flags = append(flags, "--cert", cert.certFile, "--key", cert.keyFile)
			benchArgs = append(benchArgs, "--tls", "--tls-ca", cert.certFile)
			tlsCfg = &tls.Config{RootCAs: cert.pool}
		}
		srv := &server{Addr: addr, note: "subordinate serve " + strings.Join(flags, " "), benchArgs: benchArgs}
		srv.probe = func(addr string) error { return probeKeys(addr, s.keyFrom, tlsCfg) }
		argv := append([]string{e.cfg.Subordinate, "serve", "--listen", listen}, flags...)
		return srv, e.launch(srv, fmt.Sprintf("%s-%d", s.id, w), argv...)
	}
}

// probeKeys checks that addr serves 8 keys presented the keyFrom way, each
// on a connection of its own, with the bench package's own client.
func probeKeys(addr, keyFrom string, tlsCfg *tls.Config) error {
	const n = 8
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := bench.Run(ctx, bench.Config{Addr: addr, KeyFrom: keyFrom, TLS: tlsCfg, Mode: bench.Connect,
		Conns: 1, Requests: n, Keys: 1000, Size: 8, Linger0: true, Timeout: 2 * time.Second, MaxErrors: 1})
	if err != nil {
		return err
	}
	if res.Requests < n {
		return fmt.Errorf("%d of %d probes echoed: errors %v %v", res.Requests, n, res.Errors, res.Reasons)
	}
	return nil
}

// waitProbe waits until s.probe passes, like waitReady.
func waitProbe(s *server, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := s.probe(addr)
		if err == nil {
			return nil
		}
		if xerr := s.exited(); xerr != nil {
			return fmt.Errorf("%w before it served: %v; log: %s", xerr, err, s.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving after %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// issue13Lines lists the summary's lines: for each workload, every source
// against the preamble with 1 and with N workers, sni with N workers
// against 1, and the preamble over TLS against sni. The issue's targets
// are per connection; the ping-pong lines are for reference.
func issue13Lines(workers any) []target {
	round := func(v float64) float64 { return math.Round(v*100) / 100 }
	le1 := func(v float64) bool { return round(v) <= 1 }
	ge1 := func(v float64) bool { return round(v) >= 1 }
	ratio := func(f figure) string { return fmt.Sprintf("%.2f", f.v) }
	nw := fmt.Sprintf("%v workers", workers)
	var ts []target
	for _, wl := range []struct{ id, per string }{
		{"connect", "server CPU per connection, connect per request"},
		{"pingpong", "server CPU per request, ping-pong"},
	} {
		perConn := wl.id == "connect"
		goal := func(g string, met func(float64) bool) (string, func(float64) bool) {
			if !perConn {
				return "–", nil
			}
			return g, met
		}
		for _, s := range []source13{srcClientIP, srcHeader, srcSNI} {
			for _, n := range []struct{ id, name string }{{"1", "1 worker"}, {"N", nw}} {
				g, met := goal("≤ 1", le1)
				if s == srcSNI {
					g, met = "– (TLS against none)", nil
				}
				ts = append(ts, target{
					label: fmt.Sprintf("%s: %s ÷ frame, %s", wl.per, s.name, n.name),
					goal:  g, met: met, show: ratio,
					eval: cpuRatio(row13(s, n.id), row13(srcFrame, n.id), wl.id),
				})
			}
		}
		g, met := goal("≤ 1", le1)
		ts = append(ts, target{
			label: fmt.Sprintf("%s: sni, %s ÷ sni, 1 worker", wl.per, nw),
			goal:  g, met: met, show: ratio,
			eval: cpuRatio(row13(srcSNI, "N"), row13(srcSNI, "1"), wl.id),
		})
		g, met = goal("≥ 1", ge1)
		ts = append(ts, target{
			label: fmt.Sprintf("%s: TLS frame ÷ sni, %s", wl.per, nw),
			goal:  g, met: met, show: ratio,
			eval: cpuRatio(row13(srcTLSFrame, "N"), row13(srcSNI, "N"), wl.id),
		})
	}
	return ts
}

// issue13Markdown renders the issue-13 summary of sets (one per pinning
// setting, each measured in one run): a line per ratio, a column per set.
func issue13Markdown(sets []*results) string {
	if len(sets) == 0 {
		return ""
	}
	var b strings.Builder
	first := sets[0]
	workers := first.Config["workers"]
	b.WriteString("### Issue 13 targets: keys without a preamble against the preamble, in one run\n\n")
	fmt.Fprintf(&b, "Every row is `subordinate serve --handler echo`, with 1 worker and with N = %v. "+
		"frame is today's line preamble; client-ip is `--key-from client-ip` (the load generator binds each connection to a loopback address of its key, 127.x.y.z); "+
		"http-header is `--key-from %s` (each connection starts with a GET request head carrying the key, which the echo handler gets as early data and echoes back before the payload); "+
		"sni is `--key-from sni` on a `tls://` listener (the key is the TLS server name, read before the handshake; the owner terminates TLS, full handshakes); "+
		"TLS frame is the preamble over TLS (the accepting worker terminates TLS, then reads the preamble). "+
		"Server CPU is user+system time of every process of the server, per connection (connect per request: dial, key, one %v-byte echo, close) or per request (ping-pong on established connections), "+
		"from medians over %v run(s) of %v per cell, rows measured in the same run, interleaved. "+
		"✓ meets the target, ✗ misses it; the issue's targets are per connection, so the ping-pong lines are for reference, and so are sni ÷ frame (a TLS handshake against none): "+
		"for TLS connections the target reads TLS frame ÷ sni ≥ 1 (SNI costs no more than the preamble over TLS).\n\n",
		workers, headerSource, first.Config["size"], first.Config["runs"], first.Config["duration"])
	writeTargets(&b, issue13Lines(workers), sets)
	return b.String()
}

// writeTargets writes a suite's summary table, a line per target and a
// column per set (pinning), then the pinning of each set and the rows
// that were not measured.
func writeTargets(b *strings.Builder, lines []target, sets []*results) {
	b.WriteString("| figure | target |")
	for _, r := range sets {
		fmt.Fprintf(b, " %s |", pinName(r))
	}
	b.WriteString("\n|---|---|")
	for range sets {
		b.WriteString("--:|")
	}
	b.WriteString("\n")
	for _, t := range lines {
		fmt.Fprintf(b, "| %s | %s |", t.label, t.goal)
		for _, r := range sets {
			f := t.eval(r)
			switch {
			case !f.ok:
				b.WriteString(" not measured |")
			case t.met == nil:
				fmt.Fprintf(b, " %s (%s) |", t.show(f), f.detail)
			default:
				verdict := " ✗"
				if t.met(f.v) {
					verdict = " ✓"
				}
				fmt.Fprintf(b, " %s%s (%s) |", t.show(f), verdict, f.detail)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, r := range sets {
		fmt.Fprintf(b, "%s: %s.  \n", strings.ToUpper(pinName(r)[:1])+pinName(r)[1:], pinning(r))
	}
	for _, r := range sets {
		for _, row := range r.Rows {
			if row.Error != "" {
				fmt.Fprintf(b, "%s, %s: not measured: %s  \n", pinName(r), row.Label, oneLine(row.Error))
			}
		}
	}
}
