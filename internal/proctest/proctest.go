// Package proctest runs a Subordinate master as a real child process in
// tests: it reads the JSON logs of the master and its workers (they share
// its stderr), waits for log lines, signals processes, and fails the test
// if any process the test started is left behind or a race was reported.
package proctest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build builds the Go package pkg into dir and returns the binary's path.
// With race, the binary is built with the race detector (use RaceEnabled
// to follow the test binary).
func Build(pkg, dir string, race bool) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// Main is a TestMain for tests of a program: it builds package pkg (with
// the race detector if the test binary has it) into a temporary folder,
// sets *bin to the binary's path, runs the tests and exits with their
// code, having removed the folder.
func Main(m *testing.M, pkg string, bin *string) {
	dir, err := os.MkdirTemp("", "proctest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin, err = Build(pkg, dir, RaceEnabled)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Line is one JSON log line.
type Line map[string]any

// Msg returns the line's message.
func (l Line) Msg() string { s, _ := l["msg"].(string); return s }

// Int returns the integer attribute key, or -1.
func (l Line) Int(key string) int {
	if f, ok := l[key].(float64); ok {
		return int(f)
	}
	return -1
}

// Duration returns the duration attribute key, which the JSON logs write
// in seconds (server.NewJSONLogHandler), or -1. A duration written as
// integer nanoseconds (slog's default) reads as a huge one.
func (l Line) Duration(key string) time.Duration {
	if f, ok := l[key].(float64); ok {
		return time.Duration(math.Round(f * float64(time.Second)))
	}
	return -1
}

// Str returns the string attribute key.
func (l Line) Str(key string) string { s, _ := l[key].(string); return s }

// Is reports whether the line has message msg and, for each pair of
// attrs, that attribute with that value (compared as text).
func (l Line) Is(msg string, attrs ...any) bool {
	if l.Msg() != msg {
		return false
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		if fmt.Sprint(l[attrs[i].(string)]) != fmt.Sprint(attrs[i+1]) {
			return false
		}
	}
	return true
}

// Proc is a running master.
type Proc struct {
	t   testing.TB
	Cmd *exec.Cmd
	Pid int

	mu     sync.Mutex
	lines  []Line
	raw    []string
	notify chan struct{} // closed and replaced on each line
	eof    chan struct{} // stderr closed: every process is gone

	exited chan struct{}
	state  *os.ProcessState
}

// Start starts bin with args and the environment env added, its stderr
// read as JSON logs. The test fails at cleanup if a process it started is
// left behind.
func Start(t testing.TB, bin string, env []string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	// A race-enabled binary sleeps 1s at exit by default for late race
	// reports; 100ms is plenty here and keeps the tests quick.
	cmd.Env = append(append(os.Environ(), "GORACE=atexit_sleep_ms=100"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{t: t, Cmd: cmd, Pid: cmd.Process.Pid, notify: make(chan struct{}), eof: make(chan struct{}), exited: make(chan struct{})}
	go p.read(stderr)
	go func() {
		<-p.eof // Wait closes the pipe: read it all first
		_ = cmd.Wait()
		p.mu.Lock()
		p.state = cmd.ProcessState
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(p.cleanup)
	return p
}

func (p *Proc) read(r interface{ Read([]byte) (int, error) }) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		text := sc.Text()
		var l Line
		p.mu.Lock()
		p.raw = append(p.raw, text)
		if json.Unmarshal([]byte(text), &l) == nil {
			p.lines = append(p.lines, l)
		}
		close(p.notify)
		p.notify = make(chan struct{})
		p.mu.Unlock()
	}
	close(p.eof)
}

// Logs returns the log lines so far.
func (p *Proc) Logs() []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Line(nil), p.lines...)
}

// Stderr returns everything the processes wrote to stderr so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.raw, "\n")
}

// WaitLog waits for the n-th (from 1) log line that satisfies match and
// returns it; it fails the test after timeout.
func (p *Proc) WaitLog(timeout time.Duration, n int, match func(Line) bool) Line {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		seen := 0
		for _, l := range p.lines {
			if match(l) {
				seen++
				if seen == n {
					p.mu.Unlock()
					return l
				}
			}
		}
		ch := p.notify
		p.mu.Unlock()
		select {
		case <-ch:
		case <-p.eof:
			// Everything is read: one more pass sees it all.
			select {
			case <-ch:
			default:
				p.t.Fatalf("the processes exited before the log line expected\n%s", p.tail())
			}
		case <-deadline:
			p.t.Fatalf("no such log line after %v\n%s", timeout, p.tail())
		}
	}
}

func (p *Proc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	raw := p.raw
	if len(raw) > 60 {
		raw = raw[len(raw)-60:]
	}
	return "stderr (last lines):\n" + strings.Join(raw, "\n")
}

// WaitExit waits for the master to exit and returns its state; it fails
// the test after timeout.
func (p *Proc) WaitExit(timeout time.Duration) *os.ProcessState {
	p.t.Helper()
	select {
	case <-p.exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.state
	case <-time.After(timeout):
		p.t.Fatalf("the master did not exit within %v\n%s", timeout, p.tail())
		return nil
	}
}

// Exited reports whether the master has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Signal sends sig to the master.
func (p *Proc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := syscall.Kill(p.Pid, sig); err != nil {
		p.t.Fatalf("signal %v to the master: %v", sig, err)
	}
}

// WorkerPids returns the pid of every worker the master logged starting.
func (p *Proc) WorkerPids() []int {
	var pids []int
	for _, l := range p.Logs() {
		if l.Msg() == "worker started" {
			pids = append(pids, l.Int("worker_pid"))
		}
	}
	return pids
}

// cleanup checks that no process is left behind: if the master has
// exited, no worker may be alive; if not, it is killed and its workers
// must follow it. Leftovers fail the test and are killed. It also fails
// the test on a race report in stderr.
func (p *Proc) cleanup() {
	leaks := func() []int {
		var alive []int
		for _, pid := range append(p.WorkerPids(), Children(p.Pid)...) {
			if Alive(pid) {
				alive = append(alive, pid)
			}
		}
		return alive
	}
	if !p.Exited() {
		_ = p.Cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.t.Errorf("the master (pid %d) did not die on SIGKILL", p.Pid)
		}
	}
	var left []int
	for deadline := time.Now().Add(10 * time.Second); ; {
		if left = leaks(); len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		p.t.Errorf("processes left behind: %v\n%s", left, p.tail())
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if s := p.Stderr(); strings.Contains(s, "WARNING: DATA RACE") {
		p.t.Errorf("a process reported a data race:\n%s", s)
	}
}

// Alive reports whether process pid exists and is not a zombie.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if runtime.GOOS == "linux" {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		// pid (comm) S ...: the state follows the last ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
			return b[i+2] != 'Z' && b[i+2] != 'X'
		}
		return true
	}
	return syscall.Kill(pid, 0) == nil
}

// Children returns the live child processes of pid (Linux; nil elsewhere).
func Children(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, ent := range ents {
		cpid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
			kids = append(kids, cpid)
		}
	}
	return kids
}
