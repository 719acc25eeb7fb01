package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
	"github.com/subordinate/subordinate/shard"
)

// TestOwnerKilledWithConnectionsInFlight: connections for a shard whose
// worker is stopped (SIGSTOP) are accepted by the other worker and sent
// to the owner, which cannot take them; then the owner is killed. Not one
// of those clients is closed without a word: the accepting worker still
// holds each connection the owner never opened, and serves it through the
// owner's successor once the master has restarted it (or refuses it with
// -ERR after --owner-wait).
func TestOwnerKilledWithConnectionsInFlight(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 2, "--forward", mode, "--owner-wait", "30s", "--admin", "127.0.0.1:0")
		admin := s.adminAddr(t)
		const victim, n = 1, 20
		pid := workerPid(t, s.Proc, victim, 1)
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		base := getMetrics(t, admin).shardVal(t, "subordinate_connections_forwarded_total", 0, "how", forwardHow(mode))
		type result struct {
			key, line string
			err       error
		}
		results := make(chan result, n)
		for i := range n {
			key := keyOwnedBy(victim, 2, fmt.Sprintf("inflight-%d", i))
			c, err := net.DialTimeout("tcp", s.addr, soon)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * soon))
			if _, err := fmt.Fprintf(c, "%s\n", key); err != nil {
				t.Fatal(err)
			}
			go func() {
				line, err := bufio.NewReader(c).ReadString('\n')
				results <- result{key, line, err}
			}()
		}
		// Shard 0 (the only one accepting) has sent every one of them.
		for i := 0; ; i++ {
			sent := getMetrics(t, admin).shardVal(t, "subordinate_connections_forwarded_total", 0, "how", forwardHow(mode)) - base
			if sent == n {
				break
			}
			if i == 2000 {
				t.Fatalf("shard 0 sent %v of %d connections to the stopped owner", sent, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = syscall.Kill(pid, syscall.SIGCONT)
		next := workerPid(t, s.Proc, victim, 2)
		for range n {
			r := <-results
			if r.err != nil || !strings.Contains(r.line, fmt.Sprintf("pid=%d ", next)) {
				t.Errorf("%s: %q, %v; want served by the restarted owner (pid %d)", r.key, r.line, r.err, next)
			}
		}
		if mode == "handoff" {
			s.WaitLog(soon, 1, func(l proctest.Line) bool {
				return l.Is("handing off again what a peer had not opened", "shard", 0, "peer", victim)
			})
		}
	})
}

// forwardHow is the "how" label of connections forwarded in mode.
func forwardHow(mode string) string { return mode }

// keyOwnedBy returns a key, starting with prefix, that shard owner owns
// among workers.
func keyOwnedBy(owner, workers int, prefix string) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if shard.Owner([]byte(k), workers) == owner {
			return k
		}
	}
}
