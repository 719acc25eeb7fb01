//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
)

// results is everything one comparison run measured: results.json.
type results struct {
	Date         string         `json:"date"`
	Command      string         `json:"command"`
	Pin          string         `json:"pin,omitempty"`   // "pinned" or "unpinned"
	Suite        string         `json:"suite,omitempty"` // "issue13", or "" for the peers
	Machine      machine        `json:"machine"`
	Config       map[string]any `json:"config"`
	HAProxyCheck string         `json:"haproxy_key_check,omitempty"`
	Rows         []rowResult    `json:"rows"`
	Workloads    []workload     `json:"workloads"`
	Idle         []idleResult   `json:"idle"`
	Cells        []*cell        `json:"cells"`
}

// rowResult is how a row was started, or why it could not be.
type rowResult struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Note  string `json:"note,omitempty"`
	Error string `json:"error,omitempty"`
}

// cell is one row under one workload: every run and the medians.
type cell struct {
	Row      string      `json:"row"`
	Workload string      `json:"workload"`
	Runs     []runResult `json:"runs"`
	Errors   []string    `json:"errors,omitempty"`
	Median   summary     `json:"median"`
}

// runResult is one run of one cell.
type runResult struct {
	Bench            benchResult `json:"bench"`
	ServerCPUSeconds float64     `json:"server_cpu_s"`
	ClientCPUSeconds float64     `json:"client_cpu_s"`
	ServerUsPerReq   float64     `json:"server_cpu_us_per_req"`
	ClientUsPerReq   float64     `json:"client_cpu_us_per_req"`
	ServerProcs      int         `json:"server_procs"`
}

// summary is the median of each figure over the runs of a cell, taken
// figure by figure.
type summary struct {
	Runs           int     `json:"runs"`
	RPS            float64 `json:"rps"`
	MBps           float64 `json:"mbps"`
	P50us          float64 `json:"p50_us"`
	P99us          float64 `json:"p99_us"`
	P999us         float64 `json:"p999_us"`
	MaxUs          float64 `json:"max_us"`
	ServerUsPerReq float64 `json:"server_cpu_us_per_req"`
	ClientUsPerReq float64 `json:"client_cpu_us_per_req"`
	Errors         float64 `json:"errors"`
}

// median returns the median of xs (the mean of the middle two for an even
// count), 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func medianOf(runs []runResult) summary {
	pick := func(f func(r runResult) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
		}
		return median(xs)
	}
	return summary{
		Runs:           len(runs),
		RPS:            pick(func(r runResult) float64 { return r.Bench.RPS }),
		MBps:           pick(func(r runResult) float64 { return r.Bench.MBps }),
		P50us:          pick(func(r runResult) float64 { return r.Bench.P50us }),
		P99us:          pick(func(r runResult) float64 { return r.Bench.P99us }),
		P999us:         pick(func(r runResult) float64 { return r.Bench.P999us }),
		MaxUs:          pick(func(r runResult) float64 { return r.Bench.MaxUs }),
		ServerUsPerReq: pick(func(r runResult) float64 { return r.ServerUsPerReq }),
		ClientUsPerReq: pick(func(r runResult) float64 { return r.ClientUsPerReq }),
		Errors:         pick(func(r runResult) float64 { return float64(r.Bench.ErrorTotal) }),
	}
}

// machine describes where the figures come from.
type machine struct {
	NProc   int    `json:"nproc"`
	CPU     string `json:"cpu"`
	Kernel  string `json:"kernel"`
	Go      string `json:"go"`
	HAProxy string `json:"haproxy,omitempty"`
	Node    string `json:"node,omitempty"`
	Pinning string `json:"pinning"`
}

func machineInfo(c config) machine {
	m := machine{NProc: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command(c.HAProxy, "-v").Output(); err == nil {
		// "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://..."
		f := strings.Fields(string(out))
		if len(f) >= 3 {
			m.HAProxy = "HAProxy " + f[2]
		}
	}
	if out, err := exec.Command(c.Node, "--version").Output(); err == nil {
		m.Node = strings.TrimSpace(string(out))
	}
	m.Pinning = "none"
	if c.ServerCPUs != "" || c.ClientCPUs != "" {
		m.Pinning = fmt.Sprintf("servers on CPU %s, clients on CPU %s (taskset)", orAll(c.ServerCPUs), orAll(c.ClientCPUs))
	}
	return m
}

func orAll(s string) string {
	if s == "" {
		return "any"
	}
	return s
}

func publicConfig(c config) map[string]any {
	return map[string]any{
		"workers": c.Workers, "runs": c.Runs, "duration": c.Duration.String(),
		"conns": c.Conns, "connect_conns": c.ConnectConns, "size": c.Size,
		"keys": c.Keys, "dist": "uniform", "frame": "line", "depth": c.Depth,
		"idle_conns": c.Idle, "idle_runs": c.IdleRuns, "quick": c.Quick,
	}
}

// write stores results.json, results.csv, table.md (the tables, then the
// summary of this one set) and the summary alone in dir: issue9.md, or
// issue13.md for the issue-13 suite.
func (r *results) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(dir+"/results.json", append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(dir+"/results.csv", []byte(r.csv()), 0o644); err != nil {
		return err
	}
	name, render := summaryOf(r.Suite)
	summary := render([]*results{r})
	if err := os.WriteFile(dir+"/"+name, []byte(summary), 0o644); err != nil {
		return err
	}
	return os.WriteFile(dir+"/table.md", []byte(r.markdown()+"\n"+summary), 0o644)
}

// writeSummary stores, for several sets measured under different pinning
// (each already written to its own directory), issue9.md (issue13.md) with
// the summary of all of them side by side, and table.md with that summary
// followed by every set's tables: what BENCHMARKS.md takes as it is.
// sets is not empty.
func writeSummary(dir string, sets []*results) error {
	name, render := summaryOf(sets[0].Suite)
	summary := render(sets)
	if err := os.WriteFile(dir+"/"+name, []byte(summary), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(summary)
	for _, r := range sets {
		fmt.Fprintf(&b, "\n### %s\n\n", pinTitle(r))
		b.WriteString(r.markdown())
	}
	return os.WriteFile(dir+"/table.md", []byte(b.String()), 0o644)
}

func (r *results) csv() string {
	var b strings.Builder
	b.WriteString("row,workload,runs,rps,mbps,p50_us,p99_us,p999_us,max_us,server_cpu_us_per_req,client_cpu_us_per_req,errors\n")
	for _, c := range r.Cells {
		m := c.Median
		fmt.Fprintf(&b, "%s,%s,%d,%.0f,%.2f,%.0f,%.0f,%.0f,%.0f,%.3f,%.3f,%.0f\n",
			c.Row, c.Workload, m.Runs, m.RPS, m.MBps, m.P50us, m.P99us, m.P999us, m.MaxUs,
			m.ServerUsPerReq, m.ClientUsPerReq, m.Errors)
	}
	b.WriteString("\nrow,idle_conns,server_procs,rss_before_bytes,rss_after_bytes,bytes_per_conn,error\n")
	for _, i := range r.Idle {
		fmt.Fprintf(&b, "%s,%d,%d,%d,%d,%.0f,%q\n", i.Row, i.Conns, i.Procs, i.RSSBefore, i.RSSAfter, i.BytesPerConn, i.Error)
	}
	return b.String()
}
