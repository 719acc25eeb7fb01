package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/subordinate/subordinate/bench"
	"github.com/subordinate/subordinate/internal/proctest"
)

// TestUpgradeUnderBench: the project's load generator opens a new
// connection for every request (bench --mode connect, four clients) from
// before a SIGUSR2 until after the old master has gone; not one of its
// connections fails, and it measured requests on both generations.
func TestUpgradeUnderBench(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "subordinate")
	copyBinary(t, bin)
	s := serveBinary(t, bin, 2, "--handler", "echo", "--preamble-timeout", "1s", "--drain-timeout", "30s")
	oldMaster := s.Pid

	var out, errOut bytes.Buffer
	load := exec.Command(bin, "bench", "--addr", s.addr, "--mode", "connect", "--conns", "4",
		"--duration", "10m", "--warmup", "0", "--timeout", "20s", "--json")
	load.Stdout, load.Stderr = &out, &errOut
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = load.Process.Kill() })

	s.Signal(syscall.SIGUSR2)
	ready := s.WaitLog(soon, 1, func(l proctest.Line) bool {
		return l.Is("upgrade: the new master is ready; this master drains its workers and exits", "pid", oldMaster)
	})
	newMaster := ready.Int("new_master_pid")
	t.Cleanup(func() {
		if proctest.Alive(newMaster) {
			syscall.Kill(newMaster, syscall.SIGTERM)
		}
	})
	waitGone(t, oldMaster, "the old master")

	if err := load.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := load.Wait(); err != nil {
		t.Fatalf("bench: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rep bench.Report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("bench's JSON: %v\n%s", err, out.String())
	}
	t.Logf("%d connections, %d errors, across the upgrade", rep.Requests, rep.ErrorTotal)
	if rep.Requests == 0 || rep.ErrorTotal != 0 {
		t.Fatalf("bench across the upgrade: %d requests, errors %v (%v)\n%s", rep.Requests, rep.Errors, rep.Reasons, errOut.String())
	}
}
