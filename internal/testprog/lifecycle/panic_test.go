package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
	shardpkg "github.com/subordinate/subordinate/shard"
)

// startLifecycle starts the lifecycle program with workers workers on a
// free loopback port and waits until every worker is ready and linked to
// every other; it returns the address.
func startLifecycle(t *testing.T, workers int, args ...string) (*proctest.Proc, string) {
	t.Helper()
	return startLifecycleLimited(t, 0, workers, args...)
}

// startLifecycleLimited is startLifecycle under a descriptor limit (soft
// and hard, set by the shell that execs the program), unless it is 0.
func startLifecycleLimited(t *testing.T, fdLimit, workers int, args ...string) (*proctest.Proc, string) {
	t.Helper()
	all := append([]string{"--workers", strconv.Itoa(workers), "--listen", "tcp://127.0.0.1:0"}, args...)
	var p *proctest.Proc
	if fdLimit == 0 {
		p = proctest.Start(t, binary, nil, all...)
	} else {
		sh := []string{"-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, fdLimit), binary}
		p = proctest.Start(t, "/bin/sh", nil, append(sh, all...)...)
	}
	started := p.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Msg() == "master started" })
	listen, _ := started["listen"].([]any)
	if len(listen) != 1 {
		t.Fatalf("listen addresses %v, want 1", started["listen"])
	}
	_, addr, _ := strings.Cut(fmt.Sprint(listen[0]), "://")
	waitLinked(t, p, workers, 1)
	return p, addr
}

// waitLinked waits until the n-th generation of every worker's links to
// every other is up.
func waitLinked(t *testing.T, p *proctest.Proc, workers, n int) {
	t.Helper()
	for i := 0; i < workers; i++ {
		for j := 0; j < workers; j++ {
			if i != j {
				p.WaitLog(soon, n, func(l proctest.Line) bool { return l.Is("mesh: link up", "shard", i, "peer", j) })
			}
		}
	}
}

// keyOf returns a key that shard owner owns among workers.
func keyOf(owner, workers int, tag string) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s-%d", tag, i)
		if shardpkg.Owner([]byte(k), workers) == owner {
			return k
		}
	}
}

// expectClosed sends a line and checks the server closes the connection
// without replying (no echo: the handler panicked before it).
func (c *conn) expectClosed(t *testing.T) {
	t.Helper()
	c.SetDeadline(time.Now().Add(soon))
	if _, err := io.WriteString(c, "boom\n"); err != nil {
		t.Fatalf("%q: write: %v", c.key, err)
	}
	b, err := io.ReadAll(c.r)
	if errors.Is(err, os.ErrDeadlineExceeded) || len(b) > 0 {
		t.Fatalf("%q: the client reads %q, %v; want its connection closed", c.key, b, err)
	}
}

// TestHandlerPanicProcess, with real processes: a handler that panics on
// a connection costs that connection only. The worker logs the panic
// with its stack and serves on (the same pid serves the connections it
// held and new ones, nothing is restarted), and every OnOpen still gets
// its one OnClose; with --crash-on-panic the panic kills the worker, the
// connections its shard owned close, and the master restarts it.
func TestHandlerPanicProcess(t *testing.T) {
	t.Parallel()
	t.Run("recovered", func(t *testing.T) {
		t.Parallel()
		const workers, perShard = 2, 3
		p, addr := startLifecycle(t, workers)
		pids := map[int]int{}
		var bystanders []*conn
		for s := range workers {
			c := open(t, addr, keyOf(s, workers, "bystander"), nil)
			c.echo(t, "hello")
			pids[s] = c.pid
			bystanders = append(bystanders, c)
		}
		for s := range workers {
			for n := range perShard {
				key := keyOf(s, workers, fmt.Sprintf("panic-%d", n))
				c := open(t, addr, key, nil)
				c.expectClosed(t)
				p.WaitLog(soon, 1, func(l proctest.Line) bool {
					return l.Is("handler panicked; closing its connection", "shard", s, "method", "OnData", "key", strconv.Quote(key)) &&
						strings.Contains(l.Str("panic"), "lifecycle: panic for key "+key) &&
						strings.Contains(l.Str("stack"), "main.(*handler).OnData") && l.Str("remote") != ""
				})
			}
		}
		for _, c := range bystanders {
			c.echo(t, "still here")
		}
		for s := range workers {
			c := open(t, addr, keyOf(s, workers, "after"), nil)
			if c.pid != pids[s] {
				t.Errorf("shard %d is served by pid %d after the panics, want %d (the same worker)", s, c.pid, pids[s])
			}
			c.echo(t, "new")
		}

		p.Signal(syscall.SIGTERM)
		if st := p.WaitExit(soon); st.ExitCode() != 0 {
			t.Errorf("exit: %v", st)
		}
		if started := p.WorkerPids(); len(started) != workers {
			t.Errorf("%d workers started, want %d (none restarted)", len(started), workers)
		}
		for s := range workers {
			var lines []proctest.Line
			for _, l := range p.Logs() {
				if l.Is("lifecycle totals", "shard", s) {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 {
				t.Errorf("shard %d: %d totals lines, want 1", s, len(lines))
				continue
			}
			l := lines[0]
			if l.Int("opens") != l.Int("closes") || l.Int("opens") != perShard+2 {
				t.Errorf("shard %d: %d OnOpen, %d OnClose; want %d of each", s, l.Int("opens"), l.Int("closes"), perShard+2)
			}
			if l.Int("panic_closes") != perShard {
				t.Errorf("shard %d: %d OnClose with ErrHandlerPanic, want %d", s, l.Int("panic_closes"), perShard)
			}
			if l.Int("double_closes") != 0 || l.Int("orphan_closes") != 0 {
				t.Errorf("shard %d: %d double and %d orphan OnClose", s, l.Int("double_closes"), l.Int("orphan_closes"))
			}
		}
	})

	t.Run("crash-on-panic", func(t *testing.T) {
		t.Parallel()
		const workers, victim = 2, 1
		p, addr := startLifecycle(t, workers, "--crash-on-panic")
		survivor := open(t, addr, keyOf(0, workers, "bystander"), nil)
		doomed := open(t, addr, keyOf(victim, workers, "bystander"), nil)
		survivor.echo(t, "hello")
		doomed.echo(t, "hello")

		c := open(t, addr, keyOf(victim, workers, "panic"), nil)
		c.expectClosed(t)
		restarted := p.WaitLog(soon, 2, func(l proctest.Line) bool { return l.Is("worker started", "shard", victim) })
		fresh := restarted.Int("worker_pid")
		if fresh == doomed.pid {
			t.Fatalf("the restarted worker has the pid of the dead one (%d)", fresh)
		}
		if !strings.Contains(p.Stderr(), "panic: lifecycle: panic for key") {
			t.Errorf("the worker's crash is not in its stderr")
		}
		doomed.SetDeadline(time.Now().Add(soon))
		if b, err := io.ReadAll(doomed.r); errors.Is(err, os.ErrDeadlineExceeded) || len(b) > 0 {
			t.Errorf("a connection of the crashed worker reads %q, %v; want it closed", b, err)
		}
		survivor.echo(t, "still here")

		p.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("worker ready", "shard", victim, "worker_pid", fresh) })
		waitLinked(t, p, workers, 2)
		after := open(t, addr, keyOf(victim, workers, "after"), nil)
		if after.pid != fresh {
			t.Errorf("shard %d is served by pid %d, want the restarted worker %d", victim, after.pid, fresh)
		}
		after.echo(t, "new")
		if p.Exited() {
			t.Fatal("the master exited")
		}
		p.Signal(syscall.SIGTERM)
		if st := p.WaitExit(soon); st.ExitCode() != 0 {
			t.Errorf("exit: %v", st)
		}
	})
}
