//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// idleResult is the memory of a row holding idle connections.
type idleResult struct {
	Row          string  `json:"row"`
	Conns        int     `json:"conns"`
	Procs        int     `json:"procs"`
	RSSBefore    uint64  `json:"rss_before_bytes"`
	RSSAfter     uint64  `json:"rss_after_bytes"`
	BytesPerConn float64 `json:"bytes_per_conn"`
	Error        string  `json:"error,omitempty"`
	// Runs holds every measurement when there were several (-idle-runs);
	// the fields above are then those of the median one.
	Runs []idleResult `json:"runs,omitempty"`
}

// medianIdle reduces the measurements of one row to the median one (the
// lower of the middle two for an even count), so that its RSS figures and
// bytes per connection stay those of one real measurement. Failed
// measurements are left out unless all failed.
func medianIdle(samples []idleResult) idleResult {
	var ok []idleResult
	for _, s := range samples {
		if s.Error == "" {
			ok = append(ok, s)
		}
	}
	if len(ok) == 0 {
		return samples[0]
	}
	sort.SliceStable(ok, func(i, j int) bool { return ok[i].BytesPerConn < ok[j].BytesPerConn })
	m := ok[(len(ok)-1)/2]
	if len(samples) > 1 {
		m.Runs = samples
	}
	return m
}

// measureIdle opens n idle connections to s with idleconns, waits for them
// all to be verified, lets the server settle, and reads the RSS of its
// process tree before and while they are held.
func (e *env) measureIdle(rowID string, s *server, n int) idleResult {
	r := idleResult{Row: rowID, Conns: n}
	before, err := usageOf(s.pids())
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.RSSBefore = before.RSSBytes
	argv := []string{e.bin("idleconns"), "-addr", s.Addr, "-conns", strconv.Itoa(n), "-keys", strconv.Itoa(e.cfg.Keys)}
	if e.cfg.ClientCPUs != "" {
		argv = append([]string{"taskset", "-c", e.cfg.ClientCPUs}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		r.Error = err.Error()
		return r
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		_ = cmd.Wait()
		r.Error = fmt.Sprintf("idleconns: %q %v %s", line, err, tail(stderr.String(), 300))
		return r
	}
	time.Sleep(e.cfg.Settle)
	after, err := usageOf(s.pids())
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Procs = after.Procs
	r.RSSAfter = after.RSSBytes
	r.BytesPerConn = (float64(after.RSSBytes) - float64(before.RSSBytes)) / float64(n)
	return r
}
