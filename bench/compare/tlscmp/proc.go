//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is one row: the processes that serve it and where it listens.
type server struct {
	id    string // std, sub1, subN, subSNI or haproxy (-rows)
	name  string
	addr  string
	procs []*exec.Cmd // every process of the row: its CPU is the row's
	front *exec.Cmd   // HAProxy itself (without its backends), or nil
	note  string      // what it runs, for the output
	// keyFrom is how the load generator presents its keys to this row
	// (bench.Config.KeyFrom): "" for the preamble, "sni".
	keyFrom string
}

// launch starts argv in a process group of its own, pinned to cpus with
// taskset unless cpus is "", and adds it to s.
func (s *server) launch(cpus string, argv ...string) (*exec.Cmd, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", s.name, argv[0], err)
	}
	s.procs = append(s.procs, cmd)
	return cmd, nil
}

// stop ends every process of s and waits for them.
func (s *server) stop() {
	for _, c := range s.procs {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	for _, c := range s.procs {
		_ = c.Wait()
	}
	s.procs = nil
}

// cpu is the CPU time of every process of s and their descendants.
func (s *server) cpu() time.Duration {
	var d time.Duration
	for _, c := range s.procs {
		d += treeCPU(c.Process.Pid)
	}
	return d
}

// frontCPU is the CPU time of s.front alone, or 0.
func (s *server) frontCPU() time.Duration {
	if s.front == nil {
		return 0
	}
	return treeCPU(s.front.Process.Pid)
}

// treeCPU is the user+system CPU time of pid and its descendants (all
// their threads: /proc/PID/stat counts the whole process).
func treeCPU(pid int) time.Duration {
	var ticks int64
	for _, p := range tree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		ticks += statTicks(string(b))
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// statTicks is utime+stime of a /proc/PID/stat line; the command name may
// hold spaces and parentheses, so fields count from the last ')'.
func statTicks(s string) int64 {
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// tree returns pid and its descendants. Every thread's children count:
// Subordinate's master starts its workers from a thread of their own, and
// taskset execs the server in its own process.
func tree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " / ")
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// kernel is the running kernel's release.
func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// selfCPU is the user+system time this process (the load generator) has
// used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
