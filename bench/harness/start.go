//go:build unix

package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options configures the server Start runs. The zero value means the
// defaults listed with each field.
type Options struct {
	// Workers is the number of worker processes (shards). Default 2.
	Workers int

	// Ready, when set, is called with the server's address until it
	// returns nil, to say the server is ready (for example: a preamble and
	// a probe come back). By default the server is ready once it accepts
	// a TCP connection.
	Ready func(addr string) error

	// StartTimeout bounds the wait for the server to be ready. Default 30s.
	StartTimeout time.Duration

	// StopTimeout is how long the server has to exit after SIGTERM before
	// every process of its group gets SIGKILL. Default 10s.
	StopTimeout time.Duration
}

// ErrNotReady is wrapped by the failure of a server that did not become
// ready in time or exited while starting.
var ErrNotReady = errors.New("harness: server not ready")

// Server is a Subordinate started by Start: the test binary re-executed
// as the master, which starts its workers.
type Server struct {
	// Addr is the address the server listens on, "127.0.0.1:port".
	Addr string

	cmd     *exec.Cmd
	exited  chan struct{} // closed once the master has exited and been reaped
	waitErr error
	out     syncBuffer
	stopTO  time.Duration
	once    sync.Once
}

// Start runs the test binary as a Subordinate master on a free loopback
// port and waits until it is ready. The binary's TestMain must call Main.
// The server, its workers included, is stopped in tb.Cleanup; on a failed
// test its output is logged.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := start(opts)
	if err != nil {
		tb.Fatalf("harness: start: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("harness: stop: %v", err)
		}
		if tb.Failed() {
			tb.Logf("harness: server output:\n%s", s.out.String())
		}
	})
	return s
}

func start(opts Options) (*Server, error) {
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.Workers < 1 {
		return nil, fmt.Errorf("harness: workers %d < 1", opts.Workers)
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(childConfig{Addr: addr, Workers: opts.Workers})
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("harness: test binary: %w", err)
	}
	// No test flags: Main serves before the testing package parses any.
	s := &Server{Addr: addr, exited: make(chan struct{}), stopTO: opts.StopTimeout}
	s.cmd = exec.Command(exe)
	s.cmd.Env = append(os.Environ(), envChild+"="+string(cfg))
	s.cmd.Stdout = &s.out
	s.cmd.Stderr = &s.out
	// Its own process group, so that Close can reach the workers even if
	// the master dies without stopping them.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Workers inherit the output pipes: once the master has exited, do
	// not wait for them to close it.
	s.cmd.WaitDelay = 500 * time.Millisecond
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("harness: start %s: %w", exe, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(opts); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("%w: %v; output:\n%s", ErrNotReady, err, s.out.String())
	}
	return s, nil
}

// freePort returns a loopback address with a port the kernel just had
// free.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("harness: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (s *Server) waitReady(opts Options) error {
	deadline := time.Now().Add(opts.StartTimeout)
	ready := opts.Ready
	if ready == nil {
		ready = func(addr string) error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
			}
			return err
		}
	}
	for {
		err := ready(s.Addr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", opts.StartTimeout, err)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("server exited: %v", s.waitErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops the server: SIGTERM to the master, then, after StopTimeout
// or once the master has exited, SIGKILL to whatever is left of its
// process group. It returns an error if the master had to be killed.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		pgid := s.cmd.Process.Pid
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(s.stopTO)
		defer t.Stop()
		select {
		case <-s.exited:
		case <-t.C:
			err = fmt.Errorf("harness: server did not exit %v after SIGTERM; killed", s.stopTO)
		}
		// Workers left behind (a master that crashed) go with the group.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
	})
	return err
}

// Output returns what the server has written to stdout and stderr so far.
func (s *Server) Output() string { return s.out.String() }

// syncBuffer is a bytes.Buffer safe for the child's two output pipes and
// the test reading it. It keeps the last 1 MiB.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const maxOutput = 1 << 20

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len()+len(p) > maxOutput {
		keep := b.buf.Bytes()[max(0, b.buf.Len()+len(p)-maxOutput):]
		rest := append([]byte(nil), keep...)
		b.buf.Reset()
		b.buf.Write(rest)
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
