//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/subordinate/subordinate/bench"
)

// workload is one load profile, the same for every row.
type workload struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Short string `json:"short"` // for the chart
	// Args are the mode flags of `subordinate bench`.
	Args []string `json:"args"`
}

// workloads lists the load profiles in table order.
func workloads(c *config) []workload {
	d := strconv.Itoa(c.Depth)
	cc := strconv.Itoa(c.ConnectConns)
	return []workload{
		{ID: "pingpong", Label: "ping-pong", Short: "ping-pong", Args: []string{"--mode", "pingpong", "--conns", strconv.Itoa(c.Conns)}},
		{ID: "pipeline", Label: "pipelined, depth " + d, Short: "pipelined, depth " + d, Args: []string{"--mode", "pipeline", "--depth", d, "--conns", strconv.Itoa(c.Conns)}},
		{ID: "connect", Label: "connect per request", Short: "connect per request", Args: []string{"--mode", "connect", "--conns", cc}},
		{ID: "connect0", Label: "connect per request, close by reset (SO_LINGER 0)", Short: "connect, reset close", Args: []string{"--mode", "connect", "--conns", cc, "--linger0"}},
	}
}

// benchResult is the JSON object `subordinate bench --json` prints as the
// last line of its output: the load generator's own report type.
type benchResult = bench.Report

// benchArgs is the full argument list of one bench run against s: the
// common flags, the row's own (s.benchArgs: how it takes keys) and the
// workload's.
func (e *env) benchArgs(s *server, w workload) []string {
	args := []string{"bench", "--addr", s.Addr,
		"--duration", e.cfg.Duration.String(),
		"--size", strconv.Itoa(e.cfg.Size),
		"--keys", strconv.Itoa(e.cfg.Keys),
		"--dist", "uniform", "--frame", "line", "--json"}
	args = append(args, s.benchArgs...)
	return append(args, w.Args...)
}

// runBench runs the load generator once against s, pinned to the client
// CPUs if set, and returns its result and the CPU time it used.
func (e *env) runBench(s *server, w workload) (benchResult, time.Duration, error) {
	argv := append([]string{e.cfg.Bench}, e.benchArgs(s, w)...)
	if e.cfg.ClientCPUs != "" {
		argv = append([]string{"taskset", "-c", e.cfg.ClientCPUs}, argv...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Duration+90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Env = append(cmd.Environ(), e.benchEnv...)
	err := cmd.Run()
	var cpu time.Duration
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return benchResult{}, cpu, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, tail(stderr.String(), 400))
	}
	res, err := parseBenchOutput(stdout.Bytes())
	return res, cpu, err
}

// parseBenchOutput decodes the last non-empty line of the output.
func parseBenchOutput(out []byte) (benchResult, error) {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	var r benchResult
	if err := json.Unmarshal([]byte(last), &r); err != nil {
		return r, fmt.Errorf("bench output: last line %q: %w", tail(last, 200), err)
	}
	if r.Requests < 0 || r.DurationS <= 0 {
		return r, fmt.Errorf("bench output: implausible result %q", tail(last, 200))
	}
	return r, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
