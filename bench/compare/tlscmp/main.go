//go:build linux

// Command tlscmp measures Subordinate's TLS termination against a plain Go
// crypto/tls server and against HAProxy terminating TLS (OpenSSL), side
// by side in one run:
//
//   - handshakes per second, TLS 1.3 and TLS 1.2, each full (a fresh
//     session per connection) and resumed (every connection resumes a
//     session of an earlier one, from a client session cache);
//   - 1 KiB ping-pong echo over established TLS connections.
//
// Rows: Go crypto/tls with a goroutine per connection (bench/compare/
// stdecho -tls-cert), Subordinate with 1 and with N workers, and HAProxy
// terminating TLS with the same certificate and routing the decrypted
// stream by its key line to N plain gnetecho backends (haproxy.go), the
// way the plain HAProxy row of bench/compare/run.sh routes. Every row
// serves echo after the same line preamble, in processes of its own; the
// load comes from the bench package in this process. The output is
// markdown, ready for BENCHMARKS.md: per pinning setting, a table of
// medians with the server CPU time per operation (user+system of every
// process of the row, HAProxy's backends included) and ratios against
// crypto/tls and against HAProxy in the same run.
//
// With -pin on, the servers run on -server-cpus and this process (the
// load generator) on -client-cpus, with taskset, HAProxy with nbthread
// 1; -pin off leaves both on every CPU; -pin both (the default) measures
// pinned, then unpinned, each with servers started afresh.
//
//	cd bench/compare && go run ./tlscmp -runs 3 -duration 3s -pin both
//
// HAProxy is found on PATH or at /usr/sbin/haproxy; without it the row is
// left out and the output says so.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/subordinate/subordinate/bench"
)

// options are the flags.
type options struct {
	runs        int
	duration    time.Duration
	conns       int
	workers     int
	pin         string
	serverCPUs  string
	clientCPUs  string
	haproxy     string
	defaultKex  bool
	rows        map[string]bool
	workloads   []workload
	ncpu        int
	commandLine string
}

func main() {
	var o options
	flag.IntVar(&o.runs, "runs", 5, "runs of every cell; the median is reported")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "duration of one cell")
	flag.IntVar(&o.conns, "conns", 16, "client connections (concurrent clients in the handshake workloads)")
	flag.IntVar(&o.workers, "workers", 2, "workers of the multi-worker Subordinate row, and HAProxy's backends")
	flag.StringVar(&o.pin, "pin", "both", "on: servers on -server-cpus, the load generator on -client-cpus; off: no pinning; both: pinned, then unpinned")
	flag.StringVar(&o.serverCPUs, "server-cpus", "0", "with -pin on or both, the CPUs of the servers (taskset list)")
	flag.StringVar(&o.clientCPUs, "client-cpus", "1", "with -pin on or both, the CPUs of the load generator (taskset list)")
	flag.StringVar(&o.haproxy, "haproxy", "haproxy", "the haproxy binary")
	rows := flag.String("rows", "std,sub1,subN,haproxy", "rows to measure: std (Go crypto/tls), sub1, subN (Subordinate with -workers), subSNI (the same with keys from the server name: no connection relayed), haproxy")
	match := flag.String("workloads", "", "measure only the workloads whose name contains this text (\"TLS 1.3, full\", \"echo\"); all by default")
	flag.BoolVar(&o.defaultKex, "default-kex", false, "offer Go's default key exchanges (X25519MLKEM768 first, which OpenSSL 3.0 lacks) instead of X25519")
	flag.Parse()
	var err error
	log.SetFlags(0)
	log.SetPrefix("tlscmp: ")
	o.ncpu = runtime.NumCPU()
	if o.rows, err = parseRows(*rows); err != nil {
		log.Fatal(err)
	}
	o.workloads = pickWorkloads(*match)
	if len(o.workloads) == 0 {
		log.Fatalf("-workloads %q matches no workload", *match)
	}
	o.commandLine = "cd bench/compare && go run ./tlscmp " + strings.Join(os.Args[1:], " ")
	var settings []bool
	settings, err = pinSettings(o.pin, o.ncpu)
	if err != nil {
		log.Fatal(err)
	}
	if o.runs < 1 || o.workers < 1 || o.conns < 1 {
		log.Fatal("-runs, -workers and -conns must be at least 1")
	}
	if settings[0] {
		if _, err := exec.LookPath("taskset"); err != nil {
			log.Fatal("pinning needs taskset (util-linux); use -pin off without it")
		}
	}

	dir, err := os.MkdirTemp("", "tlscmp")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var b bins
	b.cert, b.key, b.pool = makeCert(dir)
	// Import paths, not directories: this runs in the nested module
	// bench/compare, which builds the Subordinate of this checkout.
	b.sub = build(dir, "github.com/subordinate/subordinate/cmd/subordinate")
	b.std = build(dir, "github.com/subordinate/subordinate/bench/compare/stdecho")
	b.gnet = build(dir, "github.com/subordinate/subordinate/bench/compare/gnetecho")
	b.dir = dir
	hapVersion := "HAProxy not installed"
	if !o.rows["haproxy"] {
		hapVersion = "HAProxy not measured"
	} else if b.haproxy, err = findHAProxy(o.haproxy); err != nil {
		log.Print(err)
	} else {
		hapVersion = haproxyVersion(b.haproxy)
		if err := writeHAProxyPEM(filepath.Join(dir, "haproxy.pem"), b.cert, b.key); err != nil {
			log.Fatal(err)
		}
	}

	fmt.Printf("Command: `%s`, %s.\n", o.commandLine, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Printf("Machine: %d CPUs (%s), Linux %s, %s, %s.\n", o.ncpu, cpuModel(), kernel(), runtime.Version(), hapVersion)
	kex := "X25519 (and P-256, unused)"
	if o.defaultKex {
		kex = "Go's default key exchanges"
	}
	fmt.Printf("Medians of %d runs of %v per cell, rows interleaved; %d client connections (in the handshake workloads, %d concurrent clients each opening a connection per operation: dial, handshake, key line, 64 B echo, close); ECDSA P-256 certificate, the client offering %s. Full: no session to resume. Resumed: the client keeps a session cache per cell and every connection offers the last session (\"resumed\" is the share of handshakes that did). CPU per op: user+system time of the row's processes over the operations (HAProxy's row: haproxy and its %d backends).\n\n",
		o.runs, o.duration, o.conns, o.conns, kex, o.workers)
	if o.rows["haproxy"] && b.haproxy == "" {
		fmt.Printf("HAProxy row left out: %v.\n\n", errNoHAProxy)
	}
	for _, pinned := range settings {
		t, err := measure(o, &b, pinned)
		if err != nil {
			log.Fatal(err)
		}
		t.write(os.Stdout)
	}
}

// pinSettings turns -pin into the settings to measure, in order: true is
// pinned. One CPU has nothing to pin to.
func pinSettings(pin string, ncpu int) ([]bool, error) {
	var s []bool
	switch pin {
	case "on":
		s = []bool{true}
	case "off":
		s = []bool{false}
	case "both":
		s = []bool{true, false}
	default:
		return nil, fmt.Errorf("-pin %q: want on, off or both", pin)
	}
	if ncpu < 2 && s[0] {
		log.Printf("%d CPU: nothing to pin to, measuring unpinned only", ncpu)
		s = []bool{false}
	}
	return s, nil
}

// bins are the programs and the certificate every setting uses.
type bins struct {
	dir, sub, std, gnet, haproxy string
	cert, key                    string
	pool                         *x509.CertPool
}

// workload is one column of load: handshakes (Connect mode, TLS version
// pinned, with or without resumption) or echo over established
// connections.
type workload struct {
	name     string
	mode     bench.Mode
	size     int
	min, max uint16
	resume   bool
}

var workloads = []workload{
	{name: "handshakes/s, TLS 1.3, full", mode: bench.Connect, size: 64, min: tls.VersionTLS13},
	{name: "handshakes/s, TLS 1.3, resumed", mode: bench.Connect, size: 64, min: tls.VersionTLS13, resume: true},
	{name: "handshakes/s, TLS 1.2, full", mode: bench.Connect, size: 64, max: tls.VersionTLS12},
	{name: "handshakes/s, TLS 1.2, resumed", mode: bench.Connect, size: 64, max: tls.VersionTLS12, resume: true},
	{name: "echo req/s, 1 KiB ping-pong", mode: bench.PingPong, size: 1024},
}

// pickWorkloads returns the workloads whose name contains match, in order.
func pickWorkloads(match string) []workload {
	var ws []workload
	for _, w := range workloads {
		if strings.Contains(w.name, match) {
			ws = append(ws, w)
		}
	}
	return ws
}

// handshakes reports whether every operation of w is a handshake.
func (w workload) handshakes() bool { return w.mode == bench.Connect }

// short is the workload's name without its unit.
func (w workload) short() string {
	_, s, ok := strings.Cut(w.name, ", ")
	if !ok {
		return w.name
	}
	return s
}

// clientTLS is the client configuration of w.
func (w workload) clientTLS(pool *x509.CertPool, defaultKex bool) *tls.Config {
	c := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: w.min, MaxVersion: w.max}
	if !defaultKex {
		// X25519 for the key exchange. P-256 is offered too because
		// OpenSSL in TLS 1.2 serves an ECDSA certificate only on a curve
		// the client lists; TLS 1.3 sends an X25519 key share only.
		c.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	}
	return c
}

// measure starts the servers of one setting, runs every cell o.runs times
// (rows interleaved), stops them, and returns the table.
func measure(o options, b *bins, pinned bool) (*table, error) {
	serverCPUs, threads := "", 0
	heading := fmt.Sprintf("Unpinned: servers and load generator share the %d CPUs (HAProxy with its default nbthread).", o.ncpu)
	if pinned {
		if err := pinSelf(o.clientCPUs); err != nil {
			return nil, err
		}
		serverCPUs, threads = o.serverCPUs, 1
		heading = fmt.Sprintf("Pinned (taskset): servers on CPU %s (every process of a row, HAProxy with nbthread 1 and its backends), load generator on CPU %s.", o.serverCPUs, o.clientCPUs)
	} else if err := unpinSelf(o.ncpu); err != nil {
		return nil, err
	}
	servers, err := startServers(o, b, serverCPUs, threads)
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	if err != nil {
		return nil, err
	}
	t := &table{heading: heading, workloads: o.workloads, base: -1, haproxy: -1, backends: o.workers}
	for i, s := range servers {
		t.servers = append(t.servers, s.name)
		switch s.id {
		case "std":
			t.base = i
		case "haproxy":
			t.haproxy = i
		}
	}
	t.cells = make([][]cell, len(o.workloads))
	for w := range o.workloads {
		t.cells[w] = make([]cell, len(servers))
	}
	var neg []string
	for _, s := range servers {
		neg = append(neg, s.name+": "+negotiated(s.addr, b.pool, o.defaultKex, s.keyFrom == "sni"))
	}
	t.notes = append(t.notes, "Negotiated: "+strings.Join(neg, "; ")+".")
	loadBefore := loadAvg()
	for run := 0; run < o.runs; run++ {
		for w, wl := range o.workloads {
			for i, s := range servers {
				cfg := bench.Config{Addr: s.addr, Conns: o.conns, Duration: o.duration, Keys: 1000,
					Mode: wl.mode, Size: wl.size, TLS: wl.clientTLS(b.pool, o.defaultKex), TLSResume: wl.resume, KeyFrom: s.keyFrom}
				before, frontBefore, selfBefore := s.cpu(), s.frontCPU(), selfCPU()
				res, err := bench.Run(context.Background(), cfg)
				if err != nil {
					return nil, err
				}
				cpu, front, self := s.cpu()-before, s.frontCPU()-frontBefore, selfCPU()-selfBefore
				ops := float64(res.Requests)
				if ops == 0 {
					ops = math.Inf(1) // nothing measured: no CPU per op, shown as "–"
				}
				resumed := 0.0
				if res.TLSHandshakes > 0 {
					resumed = float64(res.TLSResumed) / float64(res.TLSHandshakes)
				}
				c := &t.cells[w][i]
				c.add(res.RPS(), cpu.Seconds()*1e6/ops, front.Seconds()*1e6/ops, self.Seconds()*1e6/ops, resumed)
				if n := res.ErrorTotal(); n > 0 {
					c.errors += n
					if c.reason == "" {
						c.reason = firstReason(res)
					}
				}
				fmt.Fprintf(os.Stderr, "pinned=%v run %d  %-32s %-34s %9.0f/s  %7.1f µs CPU/op  client %7.1f µs/op  resumed %3.0f%%  errors %d\n",
					pinned, run+1, wl.name, s.name, res.RPS(), c.cpu[run], c.client[run], 100*resumed, res.ErrorTotal())
			}
		}
	}
	t.notes = append(t.notes, fmt.Sprintf("Load average (1 / 5 / 15 min; other work shares this machine): %s before, %s after.", loadBefore, loadAvg()))
	return t, nil
}

// parseRows parses -rows.
func parseRows(list string) (map[string]bool, error) {
	rows := map[string]bool{}
	for _, r := range strings.Split(list, ",") {
		switch r = strings.TrimSpace(r); r {
		case "std", "sub1", "subN", "subSNI", "haproxy":
			rows[r] = true
		default:
			return nil, fmt.Errorf("-rows: unknown row %q (want std, sub1, subN, subSNI, haproxy)", r)
		}
	}
	return rows, nil
}

// firstReason is one error of res, as text.
func firstReason(res *bench.Result) string {
	for k, v := range res.Reasons {
		return k + ": " + v
	}
	for k := range res.Errors {
		return k
	}
	return "?"
}
