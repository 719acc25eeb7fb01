package main

// Tests of how a plain connection reaches an owner that did not accept it
// (serve --forward): with handoff the accepting worker passes the socket
// itself to the owner and forgets it; with relay it keeps the socket and
// copies its bytes over the mesh. Which process holds a connection's
// socket is read from /proc, so these tests see the path a connection
// took without trusting what the server says about it.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
)

// serverSocketInode returns the inode of the server's end of the TCP
// connection c (from /proc/net/tcp and tcp6), or 0 if it is not there.
func serverSocketInode(c net.Conn) uint64 {
	client, ok1 := c.LocalAddr().(*net.TCPAddr)
	server, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return 0
	}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "01" { // ESTABLISHED
				continue
			}
			if hexPort(f[1]) == server.Port && hexPort(f[2]) == client.Port {
				if ino, err := strconv.ParseUint(f[9], 10, 64); err == nil && ino != 0 {
					return ino
				}
			}
		}
	}
	return 0
}

// hexPort returns the port of a /proc/net/tcp address (ADDR:PORT in hex).
func hexPort(a string) int {
	_, p, ok := strings.Cut(a, ":")
	if !ok {
		return -1
	}
	n, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return -1
	}
	return int(n)
}

// socketHolders returns which of pids have the socket inode ino open.
func socketHolders(pids []int, ino uint64) []int {
	want := fmt.Sprintf("socket:[%d]", ino)
	var holders []int
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(dir + "/" + e.Name()); err == nil && l == want {
				holders = append(holders, pid)
				break
			}
		}
	}
	return holders
}

// checkHolders checks which process holds the server's end of each of
// conns: its owner alone in handoff mode and for a local connection; the
// accepting worker alone for a connection relayed in relay mode. It waits
// a bounded time, since the accepting worker closes its descriptor after
// passing it. workers holds the pid of each shard; the master is checked
// too.
func (s *master) checkHolders(t *testing.T, conns []*client, workers []int) {
	t.Helper()
	pids := append([]int{s.Pid}, workers...)
	var wrong []string
	for deadline := time.Now().Add(soon); ; time.Sleep(10 * time.Millisecond) {
		wrong = wrong[:0]
		for _, c := range conns {
			holder := workers[c.shard]
			if c.forwarded() && s.mode == "relay" {
				holder = workers[c.via]
			}
			ino := serverSocketInode(c.Conn)
			if ino == 0 {
				t.Fatalf("--forward %s: no server socket for the connection of shard %d accepted by %d", s.mode, c.shard, c.via)
			}
			if got := socketHolders(pids, ino); len(got) != 1 || got[0] != holder {
				wrong = append(wrong, fmt.Sprintf("the connection of shard %d accepted by shard %d is held by pids %v, want only %d", c.shard, c.via, got, holder))
			}
		}
		if len(wrong) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(wrong) > 0 {
		t.Errorf("--forward %s (master %d, workers %v):\n%s", s.mode, s.Pid, workers, strings.Join(wrong, "\n"))
	}
}

// expectClosed checks that c is closed by the server: a read fails, and
// not by the deadline.
func expectClosed(t *testing.T, what string, c *client) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(soon))
	if line, err := c.r.ReadString('\n'); err == nil {
		t.Errorf("%s (shard %d, accepted by %d) still reads %q", what, c.shard, c.via, line)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%s (shard %d, accepted by %d) was left open", what, c.shard, c.via)
	}
}

// TestAcceptorKilled: SIGKILL of a worker that accepted connections for
// other shards. Handed off, they no longer depend on it and go on; relayed,
// they die with it and are closed, not left hanging. The connections it
// owned die in both modes, and those it neither accepted nor owns go on.
func TestAcceptorKilled(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		const workers, victim = 3, 1
		s := serve(t, workers, "--forward", mode)
		var pids []int
		for i := 0; i < workers; i++ {
			pids = append(pids, workerPid(t, s.Proc, i, 1))
		}
		var passed, own, others []*client
		owners := map[int]bool{}
		for n := 0; len(passed) < 6 || len(owners) < 2 || len(own) < 2 || len(others) < 2; n++ {
			if n > 5000 {
				t.Fatalf("after %d connections: %d accepted by shard %d for others (owners %v), %d of its own, %d elsewhere",
					n, len(passed), victim, owners, len(own), len(others))
			}
			c := dial(t, "tcp", s.addr, fmt.Sprintf("acceptor-%d", n))
			c.checkRelayed(t, mode)
			switch {
			case c.via == victim && c.shard != victim && (len(passed) < 6 || !owners[c.shard]):
				passed = append(passed, c)
				owners[c.shard] = true
			case c.via == victim && c.shard == victim && len(own) < 2:
				own = append(own, c)
			case c.via != victim && c.shard != victim && len(others) < 2:
				others = append(others, c)
			default:
				c.Close()
			}
		}
		for _, c := range slices.Concat(passed, own, others) {
			c.echo(t, "before")
		}
		if runtime.GOOS == "linux" {
			s.checkHolders(t, slices.Concat(passed, own, others), pids)
		}
		if err := syscall.Kill(pids[victim], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Reaped: every descriptor the victim had is closed.
		s.WaitLog(soon, 1, func(l proctest.Line) bool {
			return l.Is("worker died", "shard", victim, "worker_pid", pids[victim])
		})
		for _, c := range own {
			expectClosed(t, "a connection the killed worker owned", c)
		}
		if mode == "handoff" {
			for _, c := range passed {
				c.echo(t, "the acceptor is gone, the owner is not")
			}
		} else {
			for _, c := range passed {
				expectClosed(t, "a connection relayed by the killed worker", c)
			}
		}
		for _, c := range others {
			c.echo(t, "unaffected")
		}
		// And once the victim is back, with fresh links to the others.
		fresh := workerPid(t, s.Proc, victim, 2)
		s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("worker ready", "shard", victim, "worker_pid", fresh) })
		if mode == "handoff" {
			for _, c := range passed {
				c.echo(t, "after the restart")
			}
		}
		for _, c := range others {
			c.echo(t, "after the restart")
		}
		for _, c := range slices.Concat(passed, own, others) {
			c.Close()
		}
		s.stop(t)
	})
}

// fdCounts returns the number of open descriptors of each pid.
func fdCounts(pids []int) []int {
	n := make([]int, len(pids))
	for i, pid := range pids {
		n[i] = openFDs(pid)
	}
	return n
}

// settledFDs waits until the descriptor counts of pids stay the same over
// a few samples and returns them.
func settledFDs(t *testing.T, pids []int) []int {
	t.Helper()
	last, same := fdCounts(pids), 0
	for deadline := time.Now().Add(soon); same < 5; {
		if time.Now().After(deadline) {
			t.Fatalf("descriptor counts of %v never settled: %v", pids, last)
		}
		time.Sleep(100 * time.Millisecond)
		now := fdCounts(pids)
		if slices.Equal(now, last) {
			same++
		} else {
			last, same = now, 0
		}
	}
	return last
}

// loadStats counts what a load saw.
type loadStats struct {
	replies, forwarded, relayed atomic.Int64
}

// handoffLoad opens n connections, conc at a time, each in one of four
// ways: a round trip then a clean close; a round trip then a reset
// (SO_LINGER 0); the key then a reset at once, while the connection may
// still be on its way to its owner; a round trip with the client's write
// side shut down, read to the server's close.
func handoffLoad(s *master, n, conc int, stats *loadStats) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, conc)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := handoffOnce(s.addr, fmt.Sprintf("fd-%d", i), i%4, stats); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func handoffOnce(addr, key string, how int, stats *loadStats) error {
	nc, err := net.DialTimeout("tcp", addr, soon)
	if err != nil {
		return err
	}
	c := nc.(*net.TCPConn)
	defer c.Close()
	c.SetDeadline(time.Now().Add(soon))
	if how == 2 {
		if _, err := io.WriteString(c, key+"\n"); err != nil {
			return err
		}
		c.SetLinger(0)
		return nil
	}
	if _, err := io.WriteString(c, key+"\nping\n"); err != nil {
		return err
	}
	if how == 3 {
		if err := c.CloseWrite(); err != nil {
			return err
		}
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("key %q: reply: %w", key, err)
	}
	m, v := shardRE.FindStringSubmatch(line), viaRE.FindStringSubmatch(line)
	if m == nil || v == nil {
		return fmt.Errorf("key %q: reply %q", key, line)
	}
	stats.replies.Add(1)
	if m[1] != v[1] {
		stats.forwarded.Add(1)
		if relayedRE.MatchString(strings.TrimSuffix(line, "\n")) {
			stats.relayed.Add(1)
		}
	}
	if echo, err := r.ReadString('\n'); err != nil || echo != "ping\n" {
		return fmt.Errorf("key %q: echo %q, %v", key, echo, err)
	}
	switch how {
	case 1:
		c.SetLinger(0)
	case 3:
		if rest, err := r.ReadString('\n'); err != io.EOF {
			return fmt.Errorf("key %q: after a half-close: %q, %v; want EOF", key, rest, err)
		}
	}
	return nil
}

// TestHandoffDescriptors: after tens of thousands of connections handed
// off between workers, closed cleanly, reset by the client, reset while
// being handed off, or half-closed, every process (the master and each
// worker) has exactly the descriptors it had before.
func TestHandoffDescriptors(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	t.Parallel()
	const workers = 3
	s := serve(t, workers, "--forward", "handoff")
	var pids []int
	for i := 0; i < workers; i++ {
		pids = append(pids, workerPid(t, s.Proc, i, 1))
	}
	all := append([]int{s.Pid}, pids...)

	// Every path once, so that whatever is made on first use is there,
	// then the baseline.
	var warm loadStats
	if err := handoffLoad(s, 200, 16, &warm); err != nil {
		t.Fatal(err)
	}
	base := settledFDs(t, all)

	// While open, a handed-off connection's socket is in its owner alone.
	var held []*client
	for n := 0; len(held) < 12; n++ {
		if n > 5000 {
			t.Fatalf("only %d forwarded connections in %d", len(held), n)
		}
		c := dial(t, "tcp", s.addr, fmt.Sprintf("held-%d", n))
		c.checkRelayed(t, s.mode)
		if c.forwarded() {
			held = append(held, c)
		} else {
			c.Close()
		}
	}
	s.checkHolders(t, held, pids)
	for i, c := range held {
		c.echo(t, "held")
		if i%2 == 1 {
			c.Conn.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}

	const conns, conc = 20000, 64
	var stats loadStats
	if err := handoffLoad(s, conns, conc, &stats); err != nil {
		t.Fatal(err)
	}
	if f := stats.forwarded.Load(); f < stats.replies.Load()/4 {
		t.Fatalf("%d of %d connections forwarded: the hand-off is hardly exercised", f, stats.replies.Load())
	}
	if r := stats.relayed.Load(); r != 0 {
		t.Errorf("%d of %d forwarded connections say relayed=true in handoff mode", r, stats.forwarded.Load())
	}

	var now []int
	for deadline := time.Now().Add(soon); ; time.Sleep(50 * time.Millisecond) {
		if now = fdCounts(all); slices.Equal(now, base) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("descriptors of the master and workers %v: %v after %d connections, %v before", all, now, conns, base)
		}
	}
	if got := s.WorkerPids(); len(got) != workers {
		t.Fatalf("workers started %v: a worker was restarted during the load", got)
	}
	t.Logf("%d connections, %d forwarded; descriptors back to %v", conns, stats.forwarded.Load(), base)
	s.stop(t)
}
