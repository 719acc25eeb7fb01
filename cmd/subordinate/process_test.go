package main

// Tests of the process model with the real binary: a master and its
// worker processes on real sockets.
//
// Unless a test says otherwise the server runs the whoami handler: after
// the key line it replies "shard=<owner> pid=<pid> via=<accepting shard>"
// (plus " relayed=true" when the accepting worker relays the connection's
// bytes over the mesh) and echoes, so a test sees which process serves a
// connection and how it got there.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
)

var binary string

func TestMain(m *testing.M) {
	proctest.Main(m, "github.com/subordinate/subordinate/cmd/subordinate", &binary)
}

// Generous deadlines: they only bound a failure.
const (
	soon = 20 * time.Second
)

type master struct {
	*proctest.Proc
	addr    string // the first listener's address
	workers int
	mode    string // --forward: handoff (the default) or relay
}

// The two ways a plain connection reaches an owner that did not accept it
// (serve --forward): the accepting worker passes the socket itself to the
// owner (handoff, the default), or keeps it and relays its bytes over the
// mesh (relay). A TLS 1.3 connection is handed off with its session in
// hand-off mode, and relayed in relay mode.
var modes = []string{"handoff", "relay"}

// forEachMode runs f as a parallel subtest for each forwarding mode, so
// that a test of routing or faults covers both paths.
func forEachMode(t *testing.T, f func(t *testing.T, mode string)) {
	t.Helper()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f(t, mode)
		})
	}
}

// serve starts "subordinate serve" with args (plus JSON logs and, unless
// args has --listen, a free loopback port) and waits for every worker to
// be ready.
func serve(t *testing.T, workers int, args ...string) *master {
	t.Helper()
	return serveBinary(t, binary, workers, args...)
}

// serveBinary is serve with the binary at bin.
func serveBinary(t *testing.T, bin string, workers int, args ...string) *master {
	t.Helper()
	all := []string{"serve", "--log-format", "json", "--workers", strconv.Itoa(workers)}
	if !contains(args, "--listen") {
		all = append(all, "--listen", "tcp://127.0.0.1:0")
	}
	if !contains(args, "--handler") {
		all = append(all, "--handler", "whoami")
	}
	all = append(all, args...)
	p := proctest.Start(t, bin, nil, all...)
	started := p.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Msg() == "master started" })
	listen, _ := started["listen"].([]any)
	if len(listen) == 0 {
		t.Fatalf("no listen addresses in %v", started)
	}
	_, addr, _ := strings.Cut(listen[0].(string), "://")
	for i := 0; i < workers; i++ {
		p.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("worker ready", "shard", i) })
	}
	// A worker is ready before the links to the peers started after it
	// are in: wait for every one, so that a test's baseline (descriptor
	// counts, say) is the server's steady state. A worker installs its
	// hand-off link to a peer before the mesh link.
	for i := 0; i < workers; i++ {
		for j := 0; j < workers; j++ {
			if i != j {
				p.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("mesh: link up", "shard", i, "peer", j) })
			}
		}
	}
	mode := "handoff"
	for i, a := range args {
		if a == "--forward" && i+1 < len(args) {
			mode = args[i+1]
		}
	}
	return &master{Proc: p, addr: addr, workers: workers, mode: mode}
}

func contains(args []string, s string) bool {
	for _, a := range args {
		if a == s {
			return true
		}
	}
	return false
}

// client is a connection that has sent its key and read the reply line.
type client struct {
	net.Conn
	r       *bufio.Reader
	shard   int
	pid     int  // -1 if the reply does not name one
	via     int  // the accepting shard; -1 if the reply does not name one
	relayed bool // the reply says relayed=true
}

var (
	shardRE   = regexp.MustCompile(`shard=(\d+)`)
	pidRE     = regexp.MustCompile(`pid=(\d+)`)
	viaRE     = regexp.MustCompile(`via=(\d+)`)
	relayedRE = regexp.MustCompile(`(^| )relayed=true( |$)`)
)

// forwarded reports whether another worker than the owner accepted c.
func (c *client) forwarded() bool { return c.via >= 0 && c.via != c.shard }

// checkRelayed fails the test unless c's reply says relayed=true exactly
// when the accepting worker relays it: a connection another worker
// accepted, in relay mode; a local or a handed-off one never is.
func (c *client) checkRelayed(t *testing.T, mode string) {
	t.Helper()
	checkRelayed(t, mode, false, c.shard, c.via, c.relayed)
}

// checkRelayed is client.checkRelayed for a reply parsed elsewhere; a TLS
// connection that another worker accepted is relayed in every mode.
func checkRelayed(t *testing.T, mode string, tls bool, shard, via int, relayed bool) {
	t.Helper()
	forwarded := via >= 0 && via != shard
	want := forwarded && (tls || mode == "relay")
	if relayed != want {
		t.Fatalf("--forward %s, tls=%v: shard %d accepted by %d says relayed=%v, want %v", mode, tls, shard, via, relayed, want)
	}
}

func dial(t *testing.T, network, addr, key string) *client {
	t.Helper()
	c, err := net.DialTimeout(network, addr, soon)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(soon))
	if _, err := fmt.Fprintf(c, "%s\n", key); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reply to key %q: %v", key, err)
	}
	m := shardRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("reply %q names no shard", line)
	}
	cl := &client{Conn: c, r: r, pid: -1, via: -1}
	cl.shard, _ = strconv.Atoi(m[1])
	if m := pidRE.FindStringSubmatch(line); m != nil {
		cl.pid, _ = strconv.Atoi(m[1])
	}
	if m := viaRE.FindStringSubmatch(line); m != nil {
		cl.via, _ = strconv.Atoi(m[1])
	}
	cl.relayed = relayedRE.MatchString(strings.TrimSuffix(line, "\n"))
	return cl
}

// echo checks a round trip on c.
func (c *client) echo(t *testing.T, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(soon))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatalf("write on shard %d: %v", c.shard, err)
	}
	line, err := c.r.ReadString('\n')
	if err != nil || line != msg+"\n" {
		t.Fatalf("echo on shard %d: %q, %v", c.shard, line, err)
	}
}

// onEveryShard opens connections until it holds one on each shard that
// the shard's own worker accepted (not forwarded), so that each lives in
// one worker process only.
func (s *master) onEveryShard(t *testing.T) []*client {
	t.Helper()
	byShard := make([]*client, s.workers)
	for n, found := 0, 0; found < s.workers; n++ {
		if n > 2000 {
			t.Fatalf("after %d connections, not every shard accepted one", n)
		}
		c := dial(t, "tcp", s.addr, fmt.Sprintf("key-%d", n))
		if c.shard < 0 || c.shard >= s.workers {
			t.Fatalf("shard %d out of range", c.shard)
		}
		c.checkRelayed(t, s.mode)
		if byShard[c.shard] == nil && c.via == c.shard {
			byShard[c.shard] = c
			found++
		} else {
			c.Close()
		}
	}
	return byShard
}

func workerPid(t *testing.T, p *proctest.Proc, shard, nth int) int {
	t.Helper()
	return p.WaitLog(soon, nth, func(l proctest.Line) bool { return l.Is("worker started", "shard", shard) }).Int("worker_pid")
}

func TestWorkersAreChildren(t *testing.T) {
	t.Parallel()
	s := serve(t, 3)
	pids := map[int]bool{}
	for i := 0; i < 3; i++ {
		pids[workerPid(t, s.Proc, i, 1)] = true
	}
	if runtime.GOOS == "linux" {
		kids := proctest.Children(s.Pid)
		if len(kids) != 3 {
			t.Fatalf("master has %d children %v, want 3 workers", len(kids), kids)
		}
		for _, k := range kids {
			if !pids[k] {
				t.Errorf("child %d is not a worker the master logged (%v)", k, pids)
			}
		}
	}
	for _, c := range s.onEveryShard(t) {
		if !pids[c.pid] {
			t.Errorf("shard %d answered from pid %d, not a worker (%v)", c.shard, c.pid, pids)
		}
		c.echo(t, "hello")
		c.Close()
	}
	s.Signal(syscall.SIGTERM)
	if st := s.WaitExit(soon); st.ExitCode() != 0 {
		t.Fatalf("exit after SIGTERM: %v", st)
	}
}

// TestUnixListener: a Unix socket listener serves local and forwarded
// connections (a Unix connection is handed off like a TCP one), and its
// file is removed when the master stops.
func TestUnixListener(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		sock := filepath.Join(t.TempDir(), "sub.sock")
		s := serve(t, 2, "--forward", mode, "--listen", "unix://"+sock, "--listen", "tcp://127.0.0.1:0")
		conns := []*client{s.findOn(t, "unix", sock, false, -1), s.findOn(t, "unix", sock, true, -1)}
		for _, c := range conns {
			c.echo(t, "over unix")
		}
		s.Signal(syscall.SIGTERM)
		for _, c := range conns {
			c.Close()
		}
		if st := s.WaitExit(soon); st.ExitCode() != 0 {
			t.Fatalf("exit after SIGTERM: %v", st)
		}
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Errorf("the socket file is still there after the master stopped: %v", err)
		}
	})
}

// TestKillWorker: SIGKILL of one worker gets it restarted with the same
// index, serving, while the connections on the other workers go on; the
// master gives back every descriptor of the dead worker's links (mesh and,
// in handoff mode, the hand-off sockets) when it makes fresh ones.
func TestKillWorker(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 3, "--forward", mode)
		conns := s.onEveryShard(t)
		fdsBefore := openFDs(s.Pid)
		victim := workerPid(t, s.Proc, 1, 1)
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		s.WaitLog(soon, 1, func(l proctest.Line) bool {
			return l.Is("worker died", "shard", 1, "worker_pid", victim, "cause", "killed by signal SIGKILL")
		})
		fresh := workerPid(t, s.Proc, 1, 2)
		// It got fresh mesh links to both survivors.
		restarted := s.WaitLog(soon, 2, func(l proctest.Line) bool { return l.Is("worker started", "shard", 1) })
		if fmt.Sprint(restarted["peers"]) != "[0 2]" {
			t.Errorf("restarted shard 1 got links to %v, want [0 2]", restarted["peers"])
		}
		s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("worker ready", "shard", 1, "worker_pid", fresh) })

		// The connection the dead worker held is gone, the others work.
		conns[1].SetReadDeadline(time.Now().Add(soon))
		if _, err := conns[1].r.ReadString('\n'); err == nil {
			t.Errorf("the killed worker's connection still reads")
		}
		conns[0].echo(t, "still here")
		conns[2].echo(t, "still here")
		if after := openFDs(s.Pid); after != fdsBefore {
			t.Errorf("the master has %d descriptors open after a restart, %d before", after, fdsBefore)
		}

		// The fresh worker serves as shard 1, as a child of the master,
		// for connections it accepts and for those the survivors pass it.
		if runtime.GOOS == "linux" && !containsInt(proctest.Children(s.Pid), fresh) {
			t.Errorf("restarted worker %d is not a child of the master", fresh)
		}
		for _, forwarded := range []bool{false, true} {
			c := s.find(t, forwarded, 1)
			if c.pid != fresh {
				t.Fatalf("shard 1 answered from pid %d, want the restarted %d", c.pid, fresh)
			}
			c.echo(t, "back")
			c.Close()
		}
		conns[0].echo(t, "and still")
		s.Signal(syscall.SIGTERM)
		for _, c := range conns {
			c.Close()
		}
		if st := s.WaitExit(soon); st.ExitCode() != 0 {
			t.Fatalf("exit after SIGTERM: %v", st)
		}
	})
}

// TestWorkerSigterm: SIGTERM to one worker drains it alone; it exits 0
// and the master starts a fresh worker for the shard.
func TestWorkerSigterm(t *testing.T) {
	t.Parallel()
	s := serve(t, 2)
	old := workerPid(t, s.Proc, 0, 1)
	if err := syscall.Kill(old, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s.WaitLog(soon, 1, func(l proctest.Line) bool {
		return l.Is("worker exited on its own", "shard", 0, "worker_pid", old, "cause", "exit status 0")
	})
	fresh := workerPid(t, s.Proc, 0, 2)
	s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("worker ready", "shard", 0, "worker_pid", fresh) })
	if s.Exited() {
		t.Fatal("the master exited")
	}
	s.Signal(syscall.SIGTERM)
	if st := s.WaitExit(soon); st.ExitCode() != 0 {
		t.Fatalf("exit after SIGTERM: %v", st)
	}
}

// openFDs counts the open descriptors of process pid (Linux; -1
// elsewhere).
func openFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestSecretNotInArgvOrEnviron checks /proc/PID/cmdline and environ of the
// master and every worker.
func TestSecretNotInArgvOrEnviron(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	t.Parallel()
	secret := fmt.Sprintf("not-in-argv-%d-%d", os.Getpid(), time.Now().UnixNano())
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := serve(t, 2, "--secret-file", file)
	pids := append([]int{s.Pid}, proctest.Children(s.Pid)...)
	if len(pids) != 3 {
		t.Fatalf("processes %v, want the master and 2 workers", pids)
	}
	for _, pid := range pids {
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 {
				t.Fatalf("/proc/%d/%s is empty: the check would prove nothing", pid, f)
			}
			if strings.Contains(string(b), secret) {
				t.Errorf("the secret is in /proc/%d/%s", pid, f)
			}
		}
	}
	s.Signal(syscall.SIGTERM)
	s.WaitExit(soon)
}

// TestDrain: on SIGTERM the workers stop accepting, open connections,
// local and forwarded, go on and finish, then everything exits 0, well
// before the drain deadline.
func TestDrain(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 2, "--forward", mode, "--drain-timeout", "10m")
		conns := append(s.onEveryShard(t), s.find(t, true, 0), s.find(t, true, 1))
		s.Signal(syscall.SIGTERM)
		for i := 0; i < 2; i++ {
			s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("draining", "shard", i) })
		}
		// New connections are refused once the master and the workers have
		// let go of the listening socket.
		for deadline := time.Now().Add(soon); ; {
			c, err := net.DialTimeout("tcp", s.addr, soon)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatal("still accepting connections while draining")
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, c := range conns {
			c.echo(t, "in flight")
		}
		if s.Exited() {
			t.Fatal("the master exited with connections in flight")
		}
		// The drain waits for the last connection, whichever it is.
		for _, c := range conns[:len(conns)-1] {
			c.Close()
		}
		conns[len(conns)-1].echo(t, "the last one")
		if s.Exited() {
			t.Fatal("the master exited with a forwarded connection in flight")
		}
		conns[len(conns)-1].Close()
		if st := s.WaitExit(soon); st.ExitCode() != 0 {
			t.Fatalf("exit after drain: %v\n%s", st, s.Stderr())
		}
	})
}

// TestDrainDeadline: connections that do not finish, local and
// forwarded, are closed at the drain deadline, and the exit is still 0.
func TestDrainDeadline(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 2, "--forward", mode, "--drain-timeout", "300ms")
		conns := []*client{s.find(t, false, -1), s.find(t, true, -1)}
		s.Signal(syscall.SIGTERM)
		for _, c := range conns {
			c.SetReadDeadline(time.Now().Add(soon))
			if _, err := c.r.ReadString('\n'); err != io.EOF {
				t.Fatalf("read at the drain deadline (shard %d via %d): %v, want EOF", c.shard, c.via, err)
			}
		}
		if st := s.WaitExit(soon); st.ExitCode() != 0 {
			t.Fatalf("exit after the drain deadline: %v", st)
		}
	})
}

// TestSecondSignal stops at once, whatever the drain timeout, and closes
// local and forwarded connections.
func TestSecondSignal(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 2, "--forward", mode, "--drain-timeout", "10m")
		conns := []*client{s.find(t, false, -1), s.find(t, true, -1)}
		s.Signal(syscall.SIGINT)
		s.WaitLog(soon, 1, func(l proctest.Line) bool { return strings.HasPrefix(l.Msg(), "draining: ") })
		s.Signal(syscall.SIGINT)
		if st := s.WaitExit(soon); st.ExitCode() != 0 {
			t.Fatalf("exit after a second signal: %v", st)
		}
		for _, c := range conns {
			c.SetReadDeadline(time.Now().Add(soon))
			if _, err := c.r.ReadString('\n'); err == nil {
				t.Fatalf("connection (shard %d via %d) still open after the stop", c.shard, c.via)
			} else if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("connection (shard %d via %d) left hanging after the stop", c.shard, c.via)
			}
		}
	})
}

// TestMasterKilled: a master killed with SIGKILL leaves no worker: they
// die with it (parent-death signal on Linux, control channel EOF
// everywhere).
func TestMasterKilled(t *testing.T) {
	t.Parallel()
	s := serve(t, 3)
	pids := s.WorkerPids()
	s.Signal(syscall.SIGKILL)
	s.WaitExit(soon)
	for deadline := time.Now().Add(soon); ; time.Sleep(10 * time.Millisecond) {
		var alive []int
		for _, pid := range pids {
			if proctest.Alive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers %v outlived the master", alive)
		}
	}
}

// TestStartupErrors: bad flags, an unreadable secret file and an address
// in use give a clear message and a non-zero exit before any worker
// starts.
func TestStartupErrors(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	unreadable := filepath.Join(dir, "unreadable")
	os.WriteFile(unreadable, []byte("s"), 0)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--workers", "0"}, 2, "workers 0"},
		{[]string{"--frame", "xml"}, 2, `frame "xml"`},
		{[]string{"--listen", "ftp://127.0.0.1:1"}, 2, `unsupported scheme "ftp"`},
		{[]string{"--listen", "tcp://127.0.0.1"}, 2, "want tcp://HOST:PORT"},
		{[]string{"--handler", "nope"}, 2, `unknown handler "nope"`},
		{[]string{"--handler", "proxy"}, 2, "no upstream"},
		{[]string{"--handler", "proxy", "--upstream", "tcp://h:{port}"}, 2, "want {shard}"},
		{[]string{"--handler", "echo", "--upstream", "tcp://h:1"}, 2, "--upstream is for --handler proxy"},
		{[]string{"--listen", "tls://127.0.0.1:0"}, 2, "needs at least one certificate"},
		{[]string{"--listen", "tls://127.0.0.1:0", "--cert", filepath.Join(dir, "missing.pem"), "--key", filepath.Join(dir, "missing.key")}, 2, "no such file"},
		{[]string{"--cert", "a.pem"}, 2, "give them in pairs"},
		{[]string{"--max-key", "70000"}, 2, "max key 70000"},
		{[]string{"--bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"--secret-file", filepath.Join(dir, "missing")}, 1, "no such file or directory"},
		{[]string{"--secret-file", empty}, 1, "is empty"},
		{[]string{"--listen", "tcp://" + busy.Addr().String()}, 1, "address already in use"},
		{[]string{"--listen", "tcp://127.0.0.1:0", "--listen", "tcp://" + busy.Addr().String()}, 1, "address already in use"},
	} {
		args := append([]string{"serve", "--log-format", "json"}, tc.args...)
		if !contains(tc.args, "--listen") {
			args = append(args, "--listen", "tcp://127.0.0.1:0")
		}
		p := proctest.Start(t, binary, nil, args...)
		st := p.WaitExit(soon)
		out := p.Stderr()
		if st.ExitCode() != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q in:\n%s", tc.args, st.ExitCode(), tc.code, tc.want, out)
		}
		if strings.Contains(out, "worker started") {
			t.Errorf("%v: a worker started:\n%s", tc.args, out)
		}
	}
	if os.Getuid() != 0 {
		p := proctest.Start(t, binary, nil, "serve", "--listen", "tcp://127.0.0.1:0", "--secret-file", unreadable)
		if st := p.WaitExit(soon); st.ExitCode() != 1 || !strings.Contains(p.Stderr(), "permission denied") {
			t.Errorf("unreadable secret file: %v\n%s", st, p.Stderr())
		}
	}
}
