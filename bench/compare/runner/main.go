//go:build linux

// Command runner measures Subordinate against its peers side by side, in
// one run, and writes the results behind BENCHMARKS.md. bench/compare/run.sh
// installs what it needs, builds the binaries and calls it; see there. It is
// Linux only: it reads /proc and pins processes with taskset.
//
//	runner -bin DIR -out DIR [-quick] [-runs 3] [-duration 8s] [-pin on|off|both] ...
//
// Every row (raw gnet, Subordinate with 1 worker and with N workers in each
// forwarding mode, HAProxy in front of N backends, a Node.js cluster, a Go
// goroutine-per-connection server) serves echo after the same line
// preamble. All rows are started first; then the idle-connection memory of
// each is measured on the fresh servers (-idle-runs times, restarting the
// servers in between); then every workload runs against every row, rows
// interleaved within each run, several runs each. For each cell it records
// what `subordinate bench --json` reports plus the CPU time (user+sys) of
// the row's whole process tree and of the client, per request. Medians over
// the runs go to results.json, results.csv, table.md and issue9.md in -out.
//
// With -pin both the whole measurement runs twice, pinned (-server-cpus,
// -client-cpus) into -out/pinned and unpinned into -out/unpinned, each with
// its own results.json, results.csv and table.md; -out/issue9.md then holds
// the issue-9 summary of both, and -out/table.md that summary followed by
// both sets of tables.
//
// With -issue13 the rows are issue 13's instead (issue13.go): Subordinate
// taking keys from the preamble, the client's address, an HTTP header and
// the TLS server name, each with 1 and N workers, and the preamble over
// TLS; the load generator presents keys the same way (bench --key-from).
// The workloads are connect per request and ping-pong, there is no idle
// memory figure, and issue13.md replaces issue9.md.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config holds the runner's flags.
type config struct {
	BinDir       string        // gnetecho, stdecho, idleconns
	Subordinate  string        // the subordinate binary (serve)
	Bench        string        // the load generator binary (bench subcommand)
	Node         string        // node executable
	NodeScript   string        // nodecluster/server.js
	HAProxy      string        // haproxy executable
	Out          string        // results directory
	Rows         string        // comma-separated row IDs, "" = all
	Workloads    string        // comma-separated workload IDs, "" = all
	Workers      int           // N
	Runs         int           // runs per cell
	Duration     time.Duration // per run
	Conns        int           // connections, ping-pong and pipelined
	ConnectConns int           // concurrent connects, connect-per-request
	Size         int           // payload bytes per request
	Keys         int           // distinct keys, uniform
	Depth        int           // pipeline depth
	Idle         int           // idle connections for the memory figure; 0 skips
	Settle       time.Duration // wait before reading RSS with idle connections held
	ServerCPUs   string        // taskset list for the servers, "" = no pinning
	ClientCPUs   string        // taskset list for the clients, "" = no pinning
	Pin          string        // on (pin if the CPU lists are set), off, or both
	IdleRuns     int           // idle-memory measurements per row, on fresh servers each
	Command      string        // the command line to print in the tables
	Quick        bool
	Issue13      bool            // the issue-13 suite (issue13.go) instead of the peers
	Issue14      bool            // the issue-14 suite (issue14.go) instead of the peers
	explicit     map[string]bool // flags given on the command line
}

// env is a run in progress.
type env struct {
	cfg      config
	logDir   string
	log      *slog.Logger
	benchEnv []string  // extra environment for the load generator (tests)
	cert     *testCert // the TLS rows' certificate, made on first use
}

func (e *env) bin(name string) string { return filepath.Join(e.cfg.BinDir, name) }

func (e *env) keyLog(i int) string {
	return filepath.Join(e.logDir, fmt.Sprintf("keys-b%d.log", i))
}

func main() {
	var c config
	flag.StringVar(&c.BinDir, "bin", "", "directory holding gnetecho, stdecho, idleconns and subordinate")
	flag.StringVar(&c.Subordinate, "subordinate", "", "subordinate binary for serve (default BIN/subordinate)")
	flag.StringVar(&c.Bench, "bench", "", "load generator binary, called as BENCH bench ... --json (default: the subordinate binary)")
	flag.StringVar(&c.Node, "node", "node", "node executable")
	flag.StringVar(&c.NodeScript, "node-script", "", "nodecluster/server.js")
	flag.StringVar(&c.HAProxy, "haproxy", "haproxy", "haproxy executable")
	flag.StringVar(&c.Out, "out", "", "results directory")
	flag.StringVar(&c.Rows, "rows", "", "rows to run, comma-separated (gnet,sub1,subN,subN-relay,haproxy,node,std; default all)")
	flag.StringVar(&c.Workloads, "workloads", "", "workloads to run, comma-separated (pingpong,pipeline,connect,connect0; default all)")
	flag.IntVar(&c.Workers, "workers", runtime.NumCPU(), "N: workers, backends and cluster size of the multi-process rows")
	flag.IntVar(&c.Runs, "runs", 3, "runs per cell; the median is reported")
	flag.DurationVar(&c.Duration, "duration", 8*time.Second, "duration of one run")
	flag.IntVar(&c.Conns, "conns", 32, "connections for ping-pong and pipelined")
	flag.IntVar(&c.ConnectConns, "connect-conns", 16, "concurrent clients for connect-per-request")
	flag.IntVar(&c.Size, "size", 64, "payload bytes per request")
	flag.IntVar(&c.Keys, "keys", 1000, "distinct keys (uniform)")
	flag.IntVar(&c.Depth, "depth", 16, "pipeline depth")
	flag.IntVar(&c.Idle, "idle", 10000, "idle connections for the memory figure (0 skips it)")
	flag.DurationVar(&c.Settle, "settle", 2*time.Second, "wait before reading RSS while idle connections are held")
	flag.StringVar(&c.ServerCPUs, "server-cpus", "", "pin the servers to these CPUs (taskset list)")
	flag.StringVar(&c.ClientCPUs, "client-cpus", "", "pin the clients to these CPUs (taskset list)")
	flag.StringVar(&c.Pin, "pin", "on", "on: pin to -server-cpus/-client-cpus if given; off: ignore them; both: measure pinned into OUT/pinned, then unpinned into OUT/unpinned, and summarise both")
	flag.IntVar(&c.IdleRuns, "idle-runs", 1, "idle-memory measurements per row, each on freshly started servers; the median is reported")
	flag.StringVar(&c.Command, "command", "", "command line to print in the tables (default: this one)")
	flag.BoolVar(&c.Quick, "quick", false, "smoke test: 1 run of 1s per cell, 1000 idle connections (flags given explicitly win)")
	flag.BoolVar(&c.Issue14, "issue14", false, "measure issue 14's clusters instead of the peers: N nodes of 1 worker (clients on node 0) against 1 node of N workers and HAProxy routing by key to N 1-worker servers; ping-pong and connect per request, no idle memory; writes issue14.md")
	flag.BoolVar(&c.Issue13, "issue13", false, "measure issue 13's key sources instead of the peers: Subordinate with --key-from frame, client-ip, http-header:X-Key and sni (TLS), 1 and N workers, and the preamble over TLS; ping-pong and connect per request, no idle memory; writes issue13.md")
	flag.Parse()
	c.explicit = map[string]bool{}
	flag.Visit(func(f *flag.Flag) { c.explicit[f.Name] = true })

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(c, log, nil); err != nil {
		log.Error("runner", "err", err)
		os.Exit(1)
	}
}

// applyDefaults fills derived settings and validates the rest.
func (c *config) applyDefaults() error {
	if c.Quick {
		// Quick settings, except where a flag said otherwise.
		set := func(name string, f func()) {
			if !c.explicit[name] {
				f()
			}
		}
		set("runs", func() { c.Runs = 1 })
		set("duration", func() { c.Duration = time.Second })
		set("settle", func() { c.Settle = 300 * time.Millisecond })
		set("idle", func() { c.Idle = min(c.Idle, 1000) })
		set("idle-runs", func() { c.IdleRuns = 1 })
	}
	if c.BinDir == "" || c.Out == "" {
		return fmt.Errorf("-bin and -out are required")
	}
	if c.Subordinate == "" {
		c.Subordinate = filepath.Join(c.BinDir, "subordinate")
	}
	if c.Bench == "" {
		c.Bench = c.Subordinate
	}
	if c.Command == "" {
		c.Command = strings.Join(os.Args, " ")
	}
	if c.Workers < 1 || c.Runs < 1 || c.Duration <= 0 || c.Conns < 1 || c.ConnectConns < 1 || c.Keys < 1 || c.Depth < 1 || c.Size < 1 {
		return fmt.Errorf("workers, runs, duration, conns, connect-conns, keys, depth and size must be positive")
	}
	if c.IdleRuns < 1 {
		c.IdleRuns = 1
	}
	if c.Issue13 && c.Issue14 {
		return fmt.Errorf("-issue13 and -issue14: one suite at a time")
	}
	if c.Issue13 || c.Issue14 {
		c.Idle = 0 // the issue-13 and -14 figures are CPU only
		if c.Workloads == "" {
			c.Workloads = issue13Workloads
		}
	}
	if c.Pin == "" {
		c.Pin = "on"
	}
	switch c.Pin {
	case "on", "off":
	case "both":
		if c.ServerCPUs == "" && c.ClientCPUs == "" {
			return fmt.Errorf("-pin both needs -server-cpus or -client-cpus (what to pin to)")
		}
	default:
		return fmt.Errorf("-pin %q: want on, off or both", c.Pin)
	}
	var ids []string
	for _, r := range c.rowDefs() {
		ids = append(ids, r.ID)
	}
	if err := checkIDs("-rows", c.Rows, ids); err != nil {
		return err
	}
	ids = ids[:0]
	for _, w := range workloads(c) {
		ids = append(ids, w.ID)
	}
	return checkIDs("-workloads", c.Workloads, ids)
}

// rowDefs lists the rows of the suite c runs: the peers, or issue 13's
// key sources.
func (c *config) rowDefs() []row {
	switch {
	case c.Issue13:
		return issue13Rows()
	case c.Issue14:
		return issue14Rows()
	}
	return rows()
}

// checkIDs rejects a name in a comma-separated list that is not one of
// known, so that a typo does not silently leave a row out.
func checkIDs(flagName, list string, known []string) error {
	if list == "" {
		return nil
	}
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(known, s) {
			return fmt.Errorf("%s: unknown %q (known: %s)", flagName, s, strings.Join(known, ","))
		}
	}
	return nil
}

// pinMode is one pinning setting the measurement runs under.
type pinMode struct {
	Name       string // "pinned" or "unpinned"
	ServerCPUs string
	ClientCPUs string
}

// pinModes lists the settings -pin asks for, in the order they run.
func (c *config) pinModes() []pinMode {
	pinned := pinMode{Name: "pinned", ServerCPUs: c.ServerCPUs, ClientCPUs: c.ClientCPUs}
	unpinned := pinMode{Name: "unpinned"}
	switch {
	case c.Pin == "both":
		return []pinMode{pinned, unpinned}
	case c.Pin == "off" || (c.ServerCPUs == "" && c.ClientCPUs == ""):
		return []pinMode{unpinned}
	default:
		return []pinMode{pinned}
	}
}

// selected filters items by a comma-separated list of IDs ("" keeps all).
func selected(list, id string) bool {
	if list == "" {
		return true
	}
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == id {
			return true
		}
	}
	return false
}

// run is the whole comparison: once, or with -pin both once pinned and
// once unpinned, each into its own directory, and then the summary of both.
// benchEnv is added to the load generator's environment (tests use it).
func run(c config, log *slog.Logger, benchEnv []string) error {
	if err := c.applyDefaults(); err != nil {
		return err
	}
	modes := c.pinModes()
	if len(modes) == 1 {
		c.ServerCPUs, c.ClientCPUs = modes[0].ServerCPUs, modes[0].ClientCPUs
		res, err := measure(c, modes[0].Name, log, benchEnv)
		if err != nil {
			return err
		}
		return res.write(c.Out)
	}
	var sets []*results
	for _, m := range modes {
		mc := c
		mc.ServerCPUs, mc.ClientCPUs = m.ServerCPUs, m.ClientCPUs
		mc.Out = filepath.Join(c.Out, m.Name)
		log.Info("pinning", "mode", m.Name, "server_cpus", orAll(m.ServerCPUs), "client_cpus", orAll(m.ClientCPUs), "out", mc.Out)
		res, err := measure(mc, m.Name, log.With("pin", m.Name), benchEnv)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		if err := res.write(mc.Out); err != nil {
			return err
		}
		sets = append(sets, res)
	}
	return writeSummary(c.Out, sets)
}

// measure runs every selected workload against every selected row under
// one pinning setting (c's CPU lists) and returns what it measured.
func measure(c config, pin string, log *slog.Logger, benchEnv []string) (*results, error) {
	e := &env{cfg: c, logDir: filepath.Join(c.Out, "logs"), log: log, benchEnv: benchEnv}
	if err := os.MkdirAll(e.logDir, 0o755); err != nil {
		return nil, err
	}
	res := &results{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Command: c.Command,
		Pin:     pin,
		Suite:   suiteName(c),
		Machine: machineInfo(c),
		Config:  publicConfig(c),
	}
	for _, w := range workloads(&c) {
		if selected(c.Workloads, w.ID) {
			res.Workloads = append(res.Workloads, w)
		}
	}

	// The HAProxy key check runs on its own instance, with key logs.
	if !c.Issue13 && !c.Issue14 && selected(c.Rows, "haproxy") {
		res.HAProxyCheck = e.checkHAProxy()
		log.Info("haproxy key check", "result", res.HAProxyCheck)
	}

	// Start every row.
	servers := map[string]*server{}
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	defs := map[string]row{}
	for _, r := range c.rowDefs() {
		if !selected(c.Rows, r.ID) {
			continue
		}
		defs[r.ID] = r
		rr := rowResult{ID: r.ID, Label: r.Label}
		s, err := e.startRow(r)
		if err != nil {
			rr.Error = err.Error()
			log.Warn("row unavailable", "row", r.ID, "err", err)
		} else {
			servers[r.ID] = s
			rr.Note = s.note
			log.Info("row up", "row", r.ID, "addr", s.Addr, "pids", s.pids())
		}
		res.Rows = append(res.Rows, rr)
	}

	// Memory per idle connection, on fresh servers: -idle-runs times, the
	// servers restarted between measurements (a Go or Node process keeps
	// memory it has grown into, so a second measurement on the same
	// process would see less growth).
	if c.Idle > 0 {
		samples := map[string][]idleResult{}
		for rep := 0; rep < c.IdleRuns; rep++ {
			if rep > 0 {
				for i, r := range res.Rows {
					s := servers[r.ID]
					if s == nil {
						continue
					}
					s.stop()
					delete(servers, r.ID)
					ns, err := e.startRow(defs[r.ID])
					if err != nil {
						res.Rows[i].Error = "restart for idle run " + strconv.Itoa(rep+1) + ": " + err.Error()
						log.Warn("row lost", "row", r.ID, "err", err)
						continue
					}
					servers[r.ID] = ns
				}
			}
			for _, r := range res.Rows {
				s := servers[r.ID]
				if s == nil {
					continue
				}
				n := c.Idle
				if r.ID == "haproxy" && n > e.haproxyMaxConn() {
					n = e.haproxyMaxConn()
				}
				ir := e.measureIdle(r.ID, s, n)
				log.Info("idle", "run", rep, "row", r.ID, "conns", ir.Conns, "bytes_per_conn", int(ir.BytesPerConn), "err", ir.Error)
				samples[r.ID] = append(samples[r.ID], ir)
			}
		}
		for _, r := range res.Rows {
			if len(samples[r.ID]) > 0 {
				res.Idle = append(res.Idle, medianIdle(samples[r.ID]))
			}
		}
	}

	// Every workload against every row, rows interleaved, several runs.
	cells := map[string]*cell{}
	for run := 0; run < c.Runs; run++ {
		for _, w := range res.Workloads {
			for _, r := range res.Rows {
				s := servers[r.ID]
				if s == nil {
					continue
				}
				key := r.ID + "/" + w.ID
				cl := cells[key]
				if cl == nil {
					cl = &cell{Row: r.ID, Workload: w.ID}
					cells[key] = cl
					res.Cells = append(res.Cells, cl)
				}
				rr, err := e.measureCell(s, w)
				if err != nil {
					cl.Errors = append(cl.Errors, err.Error())
					log.Warn("cell failed", "row", r.ID, "workload", w.ID, "run", run, "err", err)
					continue
				}
				cl.Runs = append(cl.Runs, rr)
				log.Info("cell", "run", run, "row", r.ID, "workload", w.ID,
					"rps", int(rr.Bench.RPS), "p99_us", rr.Bench.P99us,
					"server_us_per_req", fmt.Sprintf("%.2f", rr.ServerUsPerReq), "errors", rr.Bench.ErrorTotal)
			}
		}
	}
	for _, cl := range res.Cells {
		cl.Median = medianOf(cl.Runs)
	}
	return res, nil
}

// startRow starts a row on a free port and waits until it serves.
func (e *env) startRow(r row) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s, err := r.start(e, addr)
	if err != nil {
		return nil, err
	}
	ready := waitReady
	if s.probe != nil {
		ready = waitProbe
	}
	if err := ready(s, addr, 30*time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// checkHAProxy starts a separate HAProxy row whose backends log keys and
// checks that every key sticks to one backend.
func (e *env) checkHAProxy() string { return e.checkHAProxyBalance("") }

// checkHAProxyBalance is checkHAProxy with a given balance line.
func (e *env) checkHAProxyBalance(balance string) string {
	ce := *e
	ce.logDir = filepath.Join(e.logDir, "haproxy-check")
	if err := os.MkdirAll(ce.logDir, 0o755); err != nil {
		return "error: " + err.Error()
	}
	s, err := ce.startRow(row{ID: "haproxy", start: startHAProxyBalance(true, balance)})
	if err != nil {
		return "error: " + err.Error()
	}
	defer s.stop()
	// waitReady's connections are logged too: start the check from clean logs.
	var logs []string
	for i := 0; i < e.cfg.Workers; i++ {
		if err := os.Truncate(ce.keyLog(i), 0); err != nil {
			return "error: " + err.Error()
		}
		logs = append(logs, ce.keyLog(i))
	}
	const keys, rounds = 64, 3
	if err := checkKeysStick(s.Addr, keys, rounds, logs); err != nil {
		return "FAILED: " + err.Error()
	}
	return fmt.Sprintf("ok: %d keys x %d connections each, every key on one backend (%s)", keys, rounds, keyLogSummary(logs))
}

// measureCell runs one workload once against s and adds the server's and
// the client's CPU time per request.
func (e *env) measureCell(s *server, w workload) (runResult, error) {
	before, err := usageOf(s.pids())
	if err != nil {
		return runResult{}, err
	}
	b, clientCPU, err := e.runBench(s, w)
	if err != nil {
		return runResult{}, err
	}
	after, err := usageOf(s.pids())
	if err != nil {
		return runResult{}, fmt.Errorf("after the run: %w", err)
	}
	rr := runResult{Bench: b, ServerCPUSeconds: after.CPUSeconds() - before.CPUSeconds(),
		ClientCPUSeconds: clientCPU.Seconds(), ServerProcs: after.Procs}
	if b.Requests > 0 {
		rr.ServerUsPerReq = rr.ServerCPUSeconds * 1e6 / float64(b.Requests)
		rr.ClientUsPerReq = rr.ClientCPUSeconds * 1e6 / float64(b.Requests)
	}
	return rr, nil
}
