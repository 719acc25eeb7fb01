package main

// SIGUSR2 (binary upgrade) with the real binary, run from a copy in a
// temporary folder so that replacing it disturbs no other test.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
)

// steadyLoad is a steady stream of new connections: each sends its key,
// reads the whoami reply, checks one echo and closes. It counts the
// connections that worked, by the pid that served them, and keeps the
// first errors of those that did not (a refusal, a reset, a short read).
type steadyLoad struct {
	ok    atomic.Int64
	fails atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	byPid  map[int]int
	errors []string
}

func startLoad(targets [][2]string, clients int) *steadyLoad {
	l := &steadyLoad{stop: make(chan struct{}), byPid: map[int]int{}}
	for g := 0; g < clients; g++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				tg := targets[(g+n)%len(targets)]
				pid, err := loadOnce(tg[0], tg[1], fmt.Sprintf("load-%d-%d", g, n))
				l.mu.Lock()
				if err != nil {
					l.fails.Add(1)
					if len(l.errors) < 10 {
						l.errors = append(l.errors, fmt.Sprintf("%s %s: %v", tg[0], tg[1], err))
					}
				} else {
					l.ok.Add(1)
					l.byPid[pid]++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func loadOnce(network, addr, key string) (int, error) {
	c, err := net.DialTimeout(network, addr, soon)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(soon))
	if _, err := fmt.Fprintf(c, "%s\n", key); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("reply: %w", err)
	}
	m := pidRE.FindStringSubmatch(line)
	if m == nil {
		return 0, fmt.Errorf("reply %q names no pid", line)
	}
	var pid int
	fmt.Sscan(m[1], &pid)
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return 0, err
	}
	if back, err := r.ReadString('\n'); err != nil || back != "ping\n" {
		return 0, fmt.Errorf("echo: %q, %v", back, err)
	}
	return pid, nil
}

// waitOK waits until the load has made n more connections than it had.
func (l *steadyLoad) waitOK(t *testing.T, n int64) {
	t.Helper()
	want := l.ok.Load() + n
	deadline := time.Now().Add(soon)
	for l.ok.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the load made %d connections, want %d; %d failed: %v", l.ok.Load(), want, l.fails.Load(), l.errors)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// served returns how many connections the processes in pids served.
func (l *steadyLoad) served(pids []int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, p := range pids {
		n += l.byPid[p]
	}
	return n
}

func (l *steadyLoad) halt() {
	close(l.stop)
	l.wg.Wait()
}

// copyBinary copies the binary under test to path with cp(1): a file this
// process had open for writing would be inherited, for an instant, by any
// child another test forks meanwhile, and exec'ing it would then fail
// with "text file busy" (golang/go#22315).
func copyBinary(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("cp", binary, path).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
}

// workersOf returns the pids of the workers master logged starting.
func workersOf(p *proctest.Proc, master int) []int {
	var pids []int
	for _, l := range p.Logs() {
		if l.Is("worker started", "pid", master) {
			pids = append(pids, l.Int("worker_pid"))
		}
	}
	return pids
}

// waitGone waits until process pid is gone (or a zombie).
func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(soon)
	for proctest.Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) is still alive after %v", what, pid, soon)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUpgrade: SIGUSR2 under a steady stream of new connections, on a
// TCP and a Unix listener: the new master takes the sockets, its workers
// serve, the old master drains and exits, and not one connection fails.
// The pid file names the new master; a connection open across the
// upgrade finishes on the old worker, which keeps the old master up until
// it closes; the Unix socket file outlives the old master.
func TestUpgrade(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "subordinate")
	copyBinary(t, bin)
	pidFile := filepath.Join(dir, "sub.pid")
	sock := filepath.Join(dir, "sub.sock")
	s := serveBinary(t, bin, 2, "--listen", "tcp://127.0.0.1:0", "--listen", "unix://"+sock,
		"--pidfile", pidFile, "--preamble-timeout", "1s", "--drain-timeout", "60s")
	oldMaster, oldWorkers := s.Pid, workersOf(s.Proc, s.Pid)
	if got := readPid(t, pidFile); got != oldMaster {
		t.Fatalf("the pid file names %d, want the master %d", got, oldMaster)
	}
	held := dial(t, "tcp", s.addr, "held")
	if !containsInt(oldWorkers, held.pid) {
		t.Fatalf("the held connection is served by pid %d, not an old worker %v", held.pid, oldWorkers)
	}

	load := startLoad([][2]string{{"tcp", s.addr}, {"unix", sock}}, 4)
	defer load.halt()
	load.waitOK(t, 100)

	s.Signal(syscall.SIGUSR2)
	ready := s.WaitLog(soon, 1, func(l proctest.Line) bool {
		return l.Is("upgrade: the new master is ready; this master drains its workers and exits", "pid", oldMaster)
	})
	newMaster := ready.Int("new_master_pid")
	t.Cleanup(func() {
		if proctest.Alive(newMaster) {
			syscall.Kill(newMaster, syscall.SIGKILL)
		}
	})
	if got := readPid(t, pidFile); got != newMaster {
		t.Fatalf("after the upgrade the pid file names %d, want the new master %d", got, newMaster)
	}
	newWorkers := workersOf(s.Proc, newMaster)
	if len(newWorkers) != 2 {
		t.Fatalf("the new master started workers %v, want 2", newWorkers)
	}
	// The new workers serve while the old generation drains.
	for load.served(newWorkers) < 100 {
		load.waitOK(t, 10)
	}

	// The held connection: still served by its old worker, which keeps
	// the old master up.
	held.echo(t, "across the upgrade")
	if !proctest.Alive(held.pid) || !proctest.Alive(oldMaster) {
		t.Fatalf("the old worker (%v) or master (%v) is gone with a connection open", proctest.Alive(held.pid), proctest.Alive(oldMaster))
	}
	held.Close()
	waitGone(t, oldMaster, "the old master")
	for _, pid := range oldWorkers {
		waitGone(t, pid, "an old worker")
	}
	load.waitOK(t, 100) // after the old master left too
	load.halt()
	load.stop = make(chan struct{}) // for the deferred halt
	if n := load.fails.Load(); n != 0 {
		t.Fatalf("%d of %d connections failed during the upgrade: %v", n, n+load.ok.Load(), load.errors)
	}
	if old := load.served(oldWorkers); old == 0 {
		t.Fatalf("no connection of the load was served by the old workers: the test saw no upgrade")
	}
	t.Logf("%d connections: %d served by the old workers, %d by the new", load.ok.Load(), load.served(oldWorkers), load.served(newWorkers))
	for _, l := range s.Logs() {
		if l.Is("master stopped", "pid", oldMaster) && l.Str("level") != "INFO" {
			t.Fatalf("the old master stopped with an error: %v", l)
		}
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("the Unix socket file after the old master exited: %v", err)
	}
	if got := readPid(t, pidFile); got != newMaster {
		t.Fatalf("after the old master exited the pid file names %d, want %d", got, newMaster)
	}

	// The new master stops as any master does, and takes its files.
	if err := syscall.Kill(newMaster, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := s.WaitExit(soon); st.ExitCode() != 0 { // stderr closes with the new master
		t.Fatalf("the old master's exit: %v", st)
	}
	waitGone(t, newMaster, "the new master")
	for _, f := range []string{pidFile, sock} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there after the new master exited: %v", f, err)
		}
	}
}

// TestUpgradeFails: a new binary that exits at once, and one that never
// gets ready, leave the old master serving with its workers, logged as
// failed upgrades, with no descriptor left behind; a SIGUSR2 during an
// upgrade is ignored; the pid file keeps naming the old master. A SIGTERM
// during an upgrade kills the new binary and drains as usual.
func TestUpgradeFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "subordinate")
	copyBinary(t, bin)
	pidFile := filepath.Join(dir, "sub.pid")
	s := serveBinary(t, bin, 2, "--pidfile", pidFile, "--upgrade-timeout", "2s")
	workers := workersOf(s.Proc, s.Pid)
	replace := func(script string) {
		// Written by another process, for the reason copyBinary says.
		next := filepath.Join(dir, "next")
		sh := exec.Command("sh", "-c", `cat > "$1" && chmod 755 "$1"`, "sh", next)
		sh.Stdin = strings.NewReader(script)
		if out, err := sh.CombinedOutput(); err != nil {
			t.Fatalf("write %s: %v: %s", next, err, out)
		}
		if err := os.Rename(next, bin); err != nil {
			t.Fatal(err)
		}
	}
	serving := func() {
		t.Helper()
		for i := 0; i < 8; i++ {
			c := dial(t, "tcp", s.addr, fmt.Sprintf("still-%d", i))
			if !containsInt(workers, c.pid) {
				t.Fatalf("served by pid %d, not one of the master's workers %v", c.pid, workers)
			}
			c.echo(t, "still serving")
			c.Close()
		}
		if got := readPid(t, pidFile); got != s.Pid {
			t.Fatalf("the pid file names %d, want the master %d", got, s.Pid)
		}
	}

	fdsBefore := openFDs(s.Pid)
	replace("#!/bin/sh\nexit 1\n")
	s.Signal(syscall.SIGUSR2)
	failed := s.WaitLog(soon, 1, func(l proctest.Line) bool {
		return l.Is("UPGRADE FAILED: the new master exited before it was ready; this master serves on", "pid", s.Pid)
	})
	if failed.Str("cause") != "exit status 1" || failed.Str("new_binary") != bin || failed.Str("level") != "ERROR" {
		t.Fatalf("the failure line %v: want cause exit status 1, the binary's path, at ERROR", failed)
	}
	serving()

	replace("#!/bin/sh\nexec sleep 60\n")
	s.Signal(syscall.SIGUSR2)
	s.WaitLog(soon, 2, func(l proctest.Line) bool { return l.Is("upgrade: starting the new binary", "pid", s.Pid) })
	s.Signal(syscall.SIGUSR2)
	s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("upgrade: one is under way; SIGUSR2 ignored", "pid", s.Pid) })
	late := s.WaitLog(soon, 1, func(l proctest.Line) bool {
		return l.Is("UPGRADE FAILED: the new master was not ready in time; killed it; this master serves on", "pid", s.Pid)
	})
	waitGone(t, late.Int("new_master_pid"), "the new binary that never got ready")
	serving()
	// The failed upgrades gave back their channel and process handles.
	deadline := time.Now().Add(soon)
	for openFDs(s.Pid) != fdsBefore && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := openFDs(s.Pid); after != fdsBefore {
		t.Errorf("the master has %d descriptors open after two failed upgrades, %d before", after, fdsBefore)
	}
	n := 0
	for _, l := range s.Logs() {
		if l.Is("upgrade: starting the new binary", "pid", s.Pid) {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d upgrades started, want 2 (the third SIGUSR2 came during the second)", n)
	}

	// SIGTERM while a new binary is not ready: it is killed, and the
	// master drains and exits as usual.
	s.Signal(syscall.SIGUSR2)
	s.WaitLog(soon, 3, func(l proctest.Line) bool { return l.Is("upgrade: starting the new binary", "pid", s.Pid) })
	s.Signal(syscall.SIGTERM)
	abandoned := s.WaitLog(soon, 1, func(l proctest.Line) bool {
		return l.Is("upgrade abandoned: this master is draining; killed the new master", "pid", s.Pid)
	})
	waitGone(t, abandoned.Int("new_master_pid"), "the new binary of an abandoned upgrade")
	if st := s.WaitExit(soon); st.ExitCode() != 0 {
		t.Fatalf("exit after SIGTERM: %v", st)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatalf("the pid file is still there after the master exited: %v", err)
	}
}
