package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/subordinate/subordinate/internal/proctest"
)

// TestRestartRunsMastersBinary: a deploy renames another file over the
// binary a master runs; a worker restarted after that runs the master's
// binary, not the file now at the path: it is ready, serves its shard,
// runs the very file the master was started from (its inode), under the
// master's argv[0] and name, and the master neither fails nor gives up.
// The file put in place would exit 7 with a marker if it ran.
func TestRestartRunsMastersBinary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("elsewhere a restarted worker runs the file at the path (docs/PROCESSES.md)")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "subordinate")
	copyFile(t, binary, bin)
	orig, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	s := serveBinary(t, bin, 2)

	// The deploy: a new file, renamed into place.
	const marker = "THE-REPLACED-FILE-RAN"
	next := filepath.Join(dir, "subordinate.new")
	if err := os.WriteFile(next, []byte("#!/bin/sh\necho "+marker+" >&2\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, bin); err != nil {
		t.Fatal(err)
	}
	if now, err := os.Stat(bin); err != nil || os.SameFile(now, orig) {
		t.Fatalf("the path still names the master's binary after the rename (%v): the test would prove nothing", err)
	}

	victim := workerPid(t, s.Proc, 1, 1)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.WaitLog(soon, 1, func(l proctest.Line) bool {
		return l.Is("worker died", "shard", 1, "worker_pid", victim)
	})
	fresh := workerPid(t, s.Proc, 1, 2)
	s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("worker ready", "shard", 1, "worker_pid", fresh) })

	// It runs the master's file, under the master's argv[0] and name.
	exe, err := os.Stat(fmt.Sprintf("/proc/%d/exe", fresh))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(exe, orig) {
		t.Errorf("the restarted worker runs another file than the master's binary")
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", fresh))
	if err != nil {
		t.Fatal(err)
	}
	if argv0, _, _ := strings.Cut(string(cmdline), "\x00"); argv0 != bin {
		t.Errorf("the restarted worker's argv[0] is %q, want the master's %q", argv0, bin)
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", fresh))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(comm)); got != "subordinate" {
		t.Errorf("the restarted worker is named %q, want %q", got, "subordinate")
	}

	// It serves its shard, local and forwarded connections.
	for _, forwarded := range []bool{false, true} {
		c := s.find(t, forwarded, 1)
		if c.pid != fresh {
			t.Fatalf("shard 1 answered from pid %d, want the restarted %d", c.pid, fresh)
		}
		c.echo(t, "same binary")
		c.Close()
	}
	s.Signal(syscall.SIGTERM)
	if st := s.WaitExit(soon); st.ExitCode() != 0 {
		t.Fatalf("exit after SIGTERM: %v", st)
	}
	starts := 0
	for _, l := range s.Logs() {
		if l.Is("worker started", "shard", 1) {
			starts++
		}
		if l.Msg() == "SHARD KEEPS FAILING: giving up, stopping every worker" {
			t.Errorf("the master gave up: %v", l)
		}
	}
	if starts != 2 {
		t.Errorf("shard 1 was started %d times, want 2 (the first and one restart)", starts)
	}
	if strings.Contains(s.Stderr(), marker) {
		t.Errorf("the file renamed over the binary ran")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
