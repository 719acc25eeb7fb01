//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// row is one server of the comparison.
type row struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	// start launches the server on addr.
	start func(e *env, addr string) (*server, error) `json:"-"`
}

// rows lists every row in table order. The first is the reference.
func rows() []row {
	return []row{
		{ID: "gnet", Label: "raw gnet, 1 loop", start: startGnet},
		{ID: "sub1", Label: "Subordinate, 1 worker", start: startSub(1, "")},
		{ID: "subN", Label: "Subordinate, N workers, handoff", start: startSub(0, "handoff")},
		{ID: "subN-relay", Label: "Subordinate, N workers, relay", start: startSub(0, "relay")},
		{ID: "haproxy", Label: "HAProxy -> N backends", start: startHAProxy(false)},
		{ID: "node", Label: "Node.js cluster, N workers", start: startNode},
		{ID: "std", Label: "Go net, goroutine per conn", start: startStd},
	}
}

// server is a running row: one or more root processes (their children are
// part of it) and the address it serves.
type server struct {
	Addr  string
	procs []*exec.Cmd
	names []string        // names[i] names procs[i] in logs and errors
	done  []chan struct{} // closed when procs[i] has exited and been reaped
	logs  []*os.File
	note  string // how it was started, for the results
	// benchArgs are the load generator's flags for this row beyond the
	// common ones: how connections present their keys (--key-from, --tls).
	benchArgs []string
	// probe, when set, checks the row serves, instead of a line preamble
	// and an echo (waitReady): rows that take keys elsewhere.
	probe func(addr string) error
}

// pids returns the root processes.
func (s *server) pids() []int {
	out := make([]int, 0, len(s.procs))
	for _, c := range s.procs {
		out = append(out, c.Process.Pid)
	}
	return out
}

// exited reports the first root process that is gone.
func (s *server) exited() error {
	for i, c := range s.procs {
		select {
		case <-s.done[i]:
			return fmt.Errorf("%s exited (%v)", s.names[i], c.ProcessState)
		default:
		}
	}
	return nil
}

// logTail returns the end of the servers' output, for error messages.
func (s *server) logTail() string {
	var parts []string
	for _, f := range s.logs {
		b, err := os.ReadFile(f.Name())
		if err == nil && len(b) > 0 {
			parts = append(parts, filepath.Base(f.Name())+": "+tail(string(b), 300))
		}
	}
	return strings.Join(parts, "; ")
}

// stop sends SIGTERM to each root's process group, waits up to 5 s, then
// kills what is left of the groups.
func (s *server) stop() {
	for _, c := range s.procs {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	for i, c := range s.procs {
		done := s.done[i]
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
		// Children that outlived their parent in the group.
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	for _, f := range s.logs {
		f.Close()
	}
}

// launch starts one server process in its own process group, pinned to the
// server CPUs if set, with its output in the log directory.
func (e *env) launch(s *server, name string, argv ...string) error {
	if e.cfg.ServerCPUs != "" {
		argv = append([]string{"taskset", "-c", e.cfg.ServerCPUs}, argv...)
	}
	log, err := os.OpenFile(filepath.Join(e.logDir, name+".log"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.procs = append(s.procs, cmd)
	s.done = append(s.done, done)
	s.names = append(s.names, name)
	s.logs = append(s.logs, log)
	return nil
}

// waitReady waits until the server echoes after the preamble, for several
// keys (so a multi-worker server has its forwarding path up too).
func waitReady(s *server, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for k := 0; k < 8; {
		err := echoOnce(addr, fmt.Sprintf("ready-%d", k), "ready\n", 2*time.Second)
		if err == nil {
			k++
			continue
		}
		if xerr := s.exited(); xerr != nil {
			return fmt.Errorf("%w before it served: %v; log: %s", xerr, err, s.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving after %v: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startGnet(e *env, addr string) (*server, error) {
	s := &server{Addr: addr, note: "gnetecho, 1 event loop"}
	return s, e.launch(s, "gnet", e.bin("gnetecho"), "-addr", addr)
}

func startStd(e *env, addr string) (*server, error) {
	s := &server{Addr: addr, note: "stdecho, goroutine per connection"}
	return s, e.launch(s, "std", e.bin("stdecho"), "-addr", addr)
}

func startNode(e *env, addr string) (*server, error) {
	n := strconv.Itoa(e.cfg.Workers)
	s := &server{Addr: addr, note: "node cluster, " + n + " workers, default (round-robin) scheduling"}
	return s, e.launch(s, "node", e.cfg.Node, e.cfg.NodeScript, "--addr", addr, "--workers", n)
}

// startSub starts `subordinate serve` with workers processes (0: N) and,
// unless forward is "", `--forward forward`: how a worker reaches the owner
// of a connection it accepted for another shard (handoff passes the socket,
// relay copies its bytes over the mesh). With 1 worker every connection is
// local and the flag changes nothing, so sub1 leaves it out.
func startSub(workers int, forward string) func(e *env, addr string) (*server, error) {
	return func(e *env, addr string) (*server, error) {
		w := workers
		if w == 0 {
			w = e.cfg.Workers
		}
		flags := []string{"--workers", strconv.Itoa(w), "--handler", "echo", "--frame", "line"}
		if e.cfg.Idle > 0 {
			// The default limit is half the descriptor limit, less a
			// reserve: with a limit of 20 000, one worker would refuse
			// the last of 10 000 idle connections. The descriptor guard
			// still protects the worker.
			flags = append(flags, "--max-conns", strconv.Itoa(2*e.cfg.Idle))
		}
		name := "sub" + strconv.Itoa(w)
		if forward != "" {
			flags = append(flags, "--forward", forward)
			name += "-" + forward
		}
		s := &server{Addr: addr, note: "subordinate serve " + strings.Join(flags, " ")}
		argv := append([]string{e.cfg.Subordinate, "serve", "--listen", "tcp://" + addr}, flags...)
		return s, e.launch(s, name, argv...)
	}
}

// startHAProxy starts N gnetecho backends and HAProxy in front of them.
// With keyLogs, each backend logs the keys it serves, for checkKeysStick.
func startHAProxy(keyLogs bool) func(e *env, addr string) (*server, error) {
	return startHAProxyBalance(keyLogs, "")
}

// startHAProxyBalance is startHAProxy with a given balance line ("" for
// the right one); tests use it to show the key check catches a wrong one.
func startHAProxyBalance(keyLogs bool, balance string) func(e *env, addr string) (*server, error) {
	return startHAProxyOver("gnetecho", balance, func(e *env, i int, baddr string) []string {
		args := []string{e.bin("gnetecho"), "-addr", baddr}
		if keyLogs {
			args = append(args, "-keylog", e.keyLog(i))
		}
		return args
	})
}

// startHAProxyOver starts N backends, backend giving the command line of
// backend i on baddr (what kind, in the note), and HAProxy routing by key
// in front of them.
func startHAProxyOver(kind, balance string, backend func(e *env, i int, baddr string) []string) func(e *env, addr string) (*server, error) {
	return func(e *env, addr string) (*server, error) {
		s := &server{Addr: addr}
		var backends []string
		for i := 0; i < e.cfg.Workers; i++ {
			baddr, err := freeAddr()
			if err != nil {
				s.stop()
				return nil, err
			}
			if err := e.launch(s, fmt.Sprintf("haproxy-backend%d", i), backend(e, i, baddr)...); err != nil {
				s.stop()
				return nil, err
			}
			backends = append(backends, baddr)
		}
		for _, b := range backends {
			if err := waitReady(s, b, 20*time.Second); err != nil {
				s.stop()
				return nil, fmt.Errorf("backend %s: %w", b, err)
			}
		}
		p := haproxyParams{Addr: addr, Backends: backends, MaxConn: e.haproxyMaxConn(), Balance: balance}
		cfgPath := filepath.Join(e.logDir, "haproxy.cfg")
		if err := writeHAProxyConfig(cfgPath, p); err != nil {
			s.stop()
			return nil, err
		}
		if out, err := exec.Command(e.cfg.HAProxy, "-c", "-f", cfgPath).CombinedOutput(); err != nil {
			s.stop()
			return nil, fmt.Errorf("haproxy -c: %v: %s", err, out)
		}
		s.note = fmt.Sprintf("haproxy (mode tcp, balance hash var(sess.key), maxconn %d) -> %d %s backends", p.MaxConn, len(backends), kind)
		if err := e.launch(s, "haproxy", e.cfg.HAProxy, "-db", "-f", cfgPath); err != nil {
			s.stop()
			return nil, err
		}
		return s, nil
	}
}

// haproxyMaxConn is the most connections HAProxy can hold within the
// file descriptor limit: two descriptors per proxied connection.
func (e *env) haproxyMaxConn() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1000
	}
	n := (int(lim.Cur) - 200) / 2
	if n < 100 {
		n = 100
	}
	return n
}
