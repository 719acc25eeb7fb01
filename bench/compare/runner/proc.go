//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat is what the runner reads of one process.
type procStat struct {
	pid, ppid    int
	utime, stime uint64 // clock ticks
	rssPages     uint64
}

// readStat parses /proc/PID/stat and /proc/PID/statm.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	st, err := parseStat(b)
	if err != nil {
		return procStat{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	m, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return procStat{}, err
	}
	f := strings.Fields(string(m))
	if len(f) < 2 {
		return procStat{}, fmt.Errorf("pid %d: short statm %q", pid, m)
	}
	st.rssPages, err = strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("pid %d: statm: %w", pid, err)
	}
	return st, nil
}

// parseStat parses the fields of /proc/PID/stat the runner needs. The
// command name (field 2) may hold spaces and parentheses, so the fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("malformed stat %q", b)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("stat pid: %w", err)
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15).
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("short stat %q", b)
	}
	st := procStat{pid: pid}
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, fmt.Errorf("stat ppid: %w", err)
	}
	if st.utime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("stat utime: %w", err)
	}
	if st.stime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("stat stime: %w", err)
	}
	return st, nil
}

// treeUsage is the sum over a process tree.
type treeUsage struct {
	Procs    int
	CPUTicks uint64 // utime+stime of every live process in the tree
	RSSBytes uint64
}

// CPUSeconds is CPUTicks in seconds.
func (u treeUsage) CPUSeconds() float64 { return float64(u.CPUTicks) / clockTicks }

// usageOf sums utime+stime and RSS over the roots and all their
// descendants. Processes that exit between the directory scan and the read
// are skipped.
func usageOf(roots []int) (treeUsage, error) {
	entries, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return treeUsage{}, err
	}
	all := map[int]procStat{}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(e)))
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue // gone, or not ours to read
		}
		all[pid] = st
		children[st.ppid] = append(children[st.ppid], pid)
	}
	var u treeUsage
	seen := map[int]bool{}
	stack := append([]int(nil), roots...)
	page := uint64(os.Getpagesize())
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		st, ok := all[pid]
		if !ok {
			continue
		}
		u.Procs++
		u.CPUTicks += st.utime + st.stime
		u.RSSBytes += st.rssPages * page
		stack = append(stack, children[pid]...)
	}
	if u.Procs == 0 {
		return u, fmt.Errorf("no live process in tree %v", roots)
	}
	return u, nil
}
