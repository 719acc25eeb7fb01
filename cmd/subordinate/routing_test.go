package main

// Tests of key routing between shards with the real binary: the mapping,
// the mesh, forwarding, direct routing and the chat handler.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/shard"
)

// stop ends a master with SIGTERM and checks it exits 0.
func (s *master) stop(t *testing.T) {
	t.Helper()
	s.Signal(syscall.SIGTERM)
	if st := s.WaitExit(soon); st.ExitCode() != 0 {
		t.Fatalf("exit after SIGTERM: %v\n%s", st, s.Stderr())
	}
}

// TestKeysLandOnTheirOwner: for many keys, the shard that answers is the
// one shard.Owner names, whichever worker accepted the connection, and
// both local and forwarded connections occur.
func TestKeysLandOnTheirOwner(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		const workers = 3
		s := serve(t, workers, "--forward", mode, "--handler", "chat")
		forwarded, local := 0, 0
		for i := 0; i < 300; i++ {
			key := fmt.Sprintf("room-%d", i)
			c := dial(t, "tcp", s.addr, key)
			if want := shard.Owner([]byte(key), workers); c.shard != want {
				t.Fatalf("key %q joined on shard %d, the mapping says %d", key, c.shard, want)
			}
			c.Close()
		}
		// whoami tells local from forwarded.
		w := serve(t, workers, "--forward", mode)
		for i := 0; i < 300; i++ {
			key := fmt.Sprintf("k%d", i)
			c := dial(t, "tcp", w.addr, key)
			if want := shard.Owner([]byte(key), workers); c.shard != want {
				t.Fatalf("key %q served by shard %d, the mapping says %d", key, c.shard, want)
			}
			c.checkRelayed(t, mode)
			if c.forwarded() {
				forwarded++
			} else {
				local++
			}
			c.echo(t, "x")
			c.Close()
		}
		if local == 0 || forwarded == 0 {
			t.Fatalf("local %d, forwarded %d: both paths must be exercised", local, forwarded)
		}
		s.stop(t)
		w.stop(t)
	})
}

// TestChatAcrossWorkers: members of one room arriving through different
// workers get every line of every other member, in order, and never
// their own.
func TestChatAcrossWorkers(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 3, "--forward", mode, "--handler", "chat")
		const members, lines = 6, 50
		type member struct {
			c   net.Conn
			r   *bufio.Reader
			via map[int]bool
		}
		var ms []*member
		for i := 0; i < members; i++ {
			c, err := net.DialTimeout("tcp", s.addr, soon)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(soon))
			fmt.Fprintf(c, "lobby\n")
			r := bufio.NewReader(c)
			join, err := r.ReadString('\n')
			if err != nil || !strings.Contains(join, fmt.Sprintf("shard=%d", shard.Owner([]byte("lobby"), 3))) {
				t.Fatalf("join line %q, %v", join, err)
			}
			if !strings.Contains(join, fmt.Sprintf("members=%d", i+1)) {
				t.Fatalf("join line %q: want members=%d", join, i+1)
			}
			ms = append(ms, &member{c: c, r: r})
		}
		// Every member sends its lines concurrently.
		var wg sync.WaitGroup
		for i, m := range ms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < lines; j++ {
					fmt.Fprintf(m.c, "from %d line %d\n", i, j)
				}
			}()
		}
		wg.Wait()
		for i, m := range ms {
			next := make([]int, members)
			for n := 0; n < (members-1)*lines; n++ {
				line, err := m.r.ReadString('\n')
				if err != nil {
					t.Fatalf("member %d after %d lines: %v", i, n, err)
				}
				var from, seq int
				if _, err := fmt.Sscanf(line, "from %d line %d\n", &from, &seq); err != nil {
					t.Fatalf("member %d got %q", i, line)
				}
				if from == i {
					t.Fatalf("member %d got its own line %q", i, line)
				}
				if seq != next[from] {
					t.Fatalf("member %d got line %d of %d, want %d", i, seq, from, next[from])
				}
				next[from]++
			}
		}
		s.stop(t)
	})
}

// TestEchoManyConnections: thousands of connections over many keys, local
// and forwarded, get back exactly what they sent.
func TestEchoManyConnections(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 3, "--forward", mode, "--handler", "echo", "--frame", "binary")
		var pids []int
		for i := 0; i < 3; i++ {
			pids = append(pids, workerPid(t, s.Proc, i, 1))
		}
		fdsBefore := map[int]int{}
		for _, pid := range pids {
			fdsBefore[pid] = openFDs(pid)
		}
		const conns, perConn = 2000, 3
		sem := make(chan struct{}, 64)
		errs := make(chan error, conns)
		var wg sync.WaitGroup
		for i := 0; i < conns; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				errs <- echoOnce(s.addr, []byte(fmt.Sprintf("key\x00%d", i%500)), perConn, 1+i%3000)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		// Every descriptor the connections took is given back (the relays'
		// duplicated sockets included), in each worker.
		for _, pid := range pids {
			if fdsBefore[pid] < 0 {
				break // no /proc
			}
			deadline := time.Now().Add(soon)
			for openFDs(pid) > fdsBefore[pid] {
				if time.Now().After(deadline) {
					t.Fatalf("worker %d has %d descriptors open after the load, %d before", pid, openFDs(pid), fdsBefore[pid])
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		s.stop(t)
	})
}

// echoOnce connects with a binary preamble and checks rounds of echo.
func echoOnce(addr string, key []byte, rounds, size int) error {
	c, err := net.DialTimeout("tcp", addr, soon)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(soon))
	pre, err := frame.AppendKey(nil, frame.Binary, key)
	if err != nil {
		return err
	}
	msg := make([]byte, size)
	got := make([]byte, size)
	for r := 0; r < rounds; r++ {
		rand.Read(msg)
		out := msg
		if r == 0 {
			out = append(pre, msg...) // the preamble and the payload in one write
		}
		if _, err := c.Write(out); err != nil {
			return fmt.Errorf("key %q: write: %w", key, err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			return fmt.Errorf("key %q round %d: %w", key, r, err)
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("key %q round %d: echo differs", key, r)
		}
	}
	return nil
}

// TestDirectRouting: a direct preamble with the right secret reaches the
// shard it names; a wrong secret and an index out of range are refused
// with one -ERR line, never routed by hash.
func TestDirectRouting(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		secret := []byte("direct-routing-test-secret-0123456789")
		file := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(file, secret, 0o600); err != nil {
			t.Fatal(err)
		}
		s := serve(t, 3, "--forward", mode, "--secret-file", file)
		for _, enc := range []frame.Encoding{frame.Line, frame.Binary} {
			srv := s
			if enc == frame.Binary {
				srv = serve(t, 3, "--forward", mode, "--secret-file", file, "--frame", enc.String())
			}
			forwarded := 0
			for target := 0; target < 3; target++ {
				for try := 0; try < 4; try++ { // through whichever workers accept
					pre, _ := frame.AppendDirect(nil, enc, uint32(target), secret)
					line := directReply(t, srv.addr, pre)
					if !strings.Contains(line, fmt.Sprintf("shard=%d ", target)) || !strings.Contains(line, "direct=true") {
						t.Fatalf("%v direct to %d: reply %q", enc, target, line)
					}
					via := -1
					if m := viaRE.FindStringSubmatch(line); m != nil {
						via, _ = strconv.Atoi(m[1])
					}
					checkRelayed(t, mode, false, target, via, relayedRE.MatchString(strings.TrimSuffix(line, "\n")))
					if via != target {
						forwarded++
					}
				}
			}
			if forwarded == 0 {
				// Three targets: whichever worker accepts, two are elsewhere.
				t.Fatalf("%v: no direct connection was forwarded", enc)
			}
			pre, _ := frame.AppendDirect(nil, enc, 1, []byte("the wrong secret"))
			if line := directReply(t, srv.addr, pre); !strings.HasPrefix(line, "-ERR ") {
				t.Fatalf("%v wrong secret: reply %q, want -ERR", enc, line)
			}
			pre, _ = frame.AppendDirect(nil, enc, 3, secret)
			if line := directReply(t, srv.addr, pre); !strings.HasPrefix(line, "-ERR ") {
				t.Fatalf("%v shard out of range: reply %q, want -ERR", enc, line)
			}
			if srv != s {
				srv.stop(t)
			}
		}
		s.stop(t)
	})
}

// directReply sends a preamble and returns the first line of the reply;
// after an -ERR line the server must close.
func directReply(t *testing.T, addr string, pre []byte) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, soon)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(soon))
	if _, err := c.Write(pre); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reply: %q, %v", line, err)
	}
	if strings.HasPrefix(line, "-ERR ") {
		if rest, err := r.ReadByte(); err != io.EOF {
			t.Fatalf("after %q: read %q, %v; want EOF", line, rest, err)
		}
	}
	return line
}

// TestPreambleErrors: bad preambles get exactly one -ERR line and a
// close, and the worker goes on serving.
func TestPreambleErrors(t *testing.T) {
	t.Parallel()
	s := serve(t, 2, "--max-key", "16", "--preamble-timeout", "300ms")
	for _, tc := range []struct{ name, send string }{
		{"empty key", "\n"},
		{"key too long", strings.Repeat("k", 17) + "\n"},
		{"key too long, no newline yet", strings.Repeat("k", 4096)},
		{"reserved", "!x\n"},
		{"timeout", "slow"},
	} {
		line := directReply(t, s.addr, []byte(tc.send))
		if !strings.HasPrefix(line, "-ERR ") {
			t.Errorf("%s: reply %q, want -ERR", tc.name, line)
		}
	}
	c := dial(t, "tcp", s.addr, "fine")
	c.echo(t, "still serving")
	c.Close()
	s.stop(t)
}
