package main

// Fault tests with the real binary: half-close, an owner killed during
// traffic, and the memory bound under a flood.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
	"github.com/subordinate/subordinate/shard"
)

// find dials keys until one is served as want says (local: accepted by
// its owner; forwarded: by another worker), optionally by a given owner.
// Every reply must say relayed=true exactly when the mode relays.
func (s *master) find(t *testing.T, forwarded bool, owner int) *client {
	t.Helper()
	return s.findOn(t, "tcp", s.addr, forwarded, owner)
}

// findOn is find on a given listener.
func (s *master) findOn(t *testing.T, network, addr string, forwarded bool, owner int) *client {
	t.Helper()
	for n := 0; n < 5000; n++ {
		c := dial(t, network, addr, fmt.Sprintf("find-%d-%d", owner, n))
		c.checkRelayed(t, s.mode)
		if c.forwarded() == forwarded && (owner < 0 || c.shard == owner) {
			return c
		}
		c.Close()
	}
	t.Fatalf("no connection with forwarded=%v owner=%d", forwarded, owner)
	return nil
}

// TestHalfClose: a client that sends, then shuts down its write side,
// still receives the whole reply, local and forwarded.
func TestHalfClose(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 3, "--forward", mode)
		for _, forwarded := range []bool{false, true} {
			for _, size := range []int{1, 100 << 10, 4 << 20} {
				c := s.find(t, forwarded, -1)
				msg := make([]byte, size)
				rand.Read(msg)
				got := make(chan []byte, 1)
				go func() {
					b, _ := io.ReadAll(c.r)
					got <- b
				}()
				c.SetDeadline(time.Now().Add(soon))
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				if b := <-got; !bytes.Equal(b, msg) {
					t.Fatalf("forwarded=%v size %d: got %d bytes back, equal=%v", forwarded, size, len(b), bytes.Equal(b, msg))
				}
				c.Close()
			}
		}
		s.stop(t)
	})
}

// TestOwnerKilled: connections forwarded to a worker that dies are
// closed; connections of the other shards go on; new connections for the
// dead shard's keys are served by its restarted worker, or refused with
// -ERR when it is not back within --owner-wait, never left hanging.
func TestOwnerKilled(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 3, "--forward", mode, "--owner-wait", "20s")
		victim := 2
		toVictim := s.find(t, true, victim)
		// Connections the victim neither owns nor accepted.
		others := []*client{s.find(t, false, 0), s.find(t, false, 1)}
		for len(others) < 3 {
			if c := s.find(t, true, 0); c.via != victim {
				others = append(others, c)
			} else {
				c.Close()
			}
		}
		// Traffic in flight on the doomed connection.
		toVictim.echo(t, "before")
		pid := toVictim.pid
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		toVictim.SetReadDeadline(time.Now().Add(soon))
		if line, err := toVictim.r.ReadString('\n'); err == nil {
			t.Fatalf("the connection forwarded to the killed owner still reads %q", line)
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the connection forwarded to the killed owner was left open")
		}
		for _, c := range others {
			c.echo(t, "unaffected")
		}
		// New connections for the victim's keys: served by the fresh worker
		// (they wait for it), through any accepting worker.
		for i := 0; i < 20; i++ {
			c := s.find(t, i%2 == 0, victim)
			if c.pid == pid {
				t.Fatalf("shard %d answered from the killed pid %d", victim, pid)
			}
			c.echo(t, "after")
			c.Close()
		}
		for _, c := range others {
			c.echo(t, "still unaffected")
			c.Close()
		}
		s.stop(t)
	})
}

// TestOwnerWaitExpires: with a tiny --owner-wait, a connection for a
// shard that is down gets "-ERR shard N unavailable" and a close (or,
// caught in the instant the owner dies, just a close), never a hang, and
// later ones are served once the shard is back.
//
// The master is stopped (SIGSTOP) before the owner is killed, so that it
// cannot restart the shard: the workers serve without it, and every
// connection for that shard must meet a missing owner. At least one must
// get the -ERR line, which is the path this test is about.
func TestOwnerWaitExpires(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 2, "--forward", mode, "--owner-wait", "1ms")
		c := s.find(t, true, 1)
		pid := c.pid
		c.Close()
		keys := make([]string, 0, 8) // keys that shard 1 owns
		for i := 0; len(keys) < cap(keys); i++ {
			if k := fmt.Sprintf("owner-wait-%d", i); shard.Owner([]byte(k), 2) == 1 {
				keys = append(keys, k)
			}
		}
		// One connection for shard 1: its reply, or "" and the error.
		try := func(key string) (string, error) {
			conn, err := net.DialTimeout("tcp", s.addr, soon)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(soon))
			fmt.Fprintf(conn, "%s\n", key)
			line, err := bufio.NewReader(conn).ReadString('\n')
			line = strings.TrimRight(line, "\r\n")
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("no reply for %q: %v", key, err)
			}
			return line, err
		}

		s.Signal(syscall.SIGSTOP)
		stopped := true
		cont := func() {
			if stopped {
				stopped = false
				s.Signal(syscall.SIGCONT)
			}
		}
		t.Cleanup(cont)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		refused, lost := 0, 0
		for i := 0; refused < 3; i++ {
			if i == 200 {
				t.Fatalf("%d connections for shard 1 while its owner was down: %d refused, %d closed; want 3 refusals",
					i, refused, lost)
			}
			line, err := try(keys[i%len(keys)])
			switch {
			case err != nil:
				// Accepted or forwarded in the instant the owner's
				// link was going down: closed, not left hanging.
				lost++
			case line == "-ERR shard 1 unavailable":
				refused++
			default:
				t.Fatalf("reply %q while shard 1 has no worker", line)
			}
		}
		t.Logf("%d refused while the owner was down, %d closed as it died", refused, lost)

		// Once the master runs again it restarts shard 1, which serves.
		cont()
		served := 0
		for i := 0; served < len(keys); i++ {
			if i == 2000 {
				t.Fatalf("the restarted shard served %d of %d keys", served, len(keys))
			}
			line, err := try(keys[served])
			switch {
			case err != nil || line == "-ERR shard 1 unavailable" || line == "-ERR server busy":
				// Not restarted yet, or (hand-off) restarted but
				// not taking sockets within the 1ms owner wait.
				time.Sleep(10 * time.Millisecond)
			case strings.HasPrefix(line, "shard=1 "):
				served++
			default:
				t.Fatalf("reply %q", line)
			}
		}
		s.stop(t)
	})
}

// rss returns the resident set size of pid in bytes.
func rss(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skip("reads /proc")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}

// flood writes up to total bytes to c without reading, and returns how
// many it wrote before a write blocked for a second or failed.
func flood(c net.Conn, total int) (int, error) {
	chunk := make([]byte, 256<<10)
	rand.Read(chunk)
	sent := 0
	for sent < total {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := c.Write(chunk)
		sent += n
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// Flood sizes: with backpressure the writes block after socket buffers,
// the relay's buffers and one smux window, a few MiB; without it they
// would all go through.
const (
	floodTotal = 512 << 20
	floodBound = 64 << 20
)

// TestFloodOwnerNeverReads: a client floods a forwarded connection whose
// owner never reads (its process is stopped): the client is pushed back,
// and the accepting worker does not grow.
func TestFloodOwnerNeverReads(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 2, "--forward", mode)
		c := s.find(t, true, -1)
		owner := c.pid
		accepting := workerPid(t, s.Proc, c.via, 1)
		before := rss(t, accepting)
		if err := syscall.Kill(owner, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		defer syscall.Kill(owner, syscall.SIGCONT)
		sent, err := flood(c, floodTotal)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("flood: sent %d bytes, err %v; want the writes to block", sent, err)
		}
		if sent > floodBound {
			t.Fatalf("the client wrote %d MiB into a connection nobody reads", sent>>20)
		}
		grew := rss(t, accepting) - before
		if grew > floodBound {
			t.Fatalf("the accepting worker grew by %d MiB", grew>>20)
		}
		t.Logf("client pushed back after %d KiB; accepting worker grew %d KiB", sent>>10, grew>>10)
		syscall.Kill(owner, syscall.SIGCONT)
		c.Close()
		s.stop(t)
	})
}

// TestFloodClientNeverReads: a client floods an echo and never reads the
// replies: local and forwarded, the connection is closed at the buffer
// limit, and the workers do not grow.
func TestFloodClientNeverReads(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 2, "--forward", mode)
		for _, forwarded := range []bool{false, true} {
			c := s.find(t, forwarded, -1)
			owner := c.pid
			before := rss(t, owner)
			sent, err := flood(c, floodTotal)
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				// Blocked without being closed: the server must close it.
				c.SetReadDeadline(time.Now().Add(soon))
				if _, rerr := io.Copy(io.Discard, c); rerr != nil && errors.Is(rerr, os.ErrDeadlineExceeded) {
					t.Fatalf("forwarded=%v: after %d MiB the connection is neither closed nor written", forwarded, sent>>20)
				}
			}
			if sent > floodBound {
				t.Fatalf("forwarded=%v: the client wrote %d MiB without reading", forwarded, sent>>20)
			}
			if grew := rss(t, owner) - before; grew > floodBound {
				t.Fatalf("forwarded=%v: the owner grew by %d MiB", forwarded, grew>>20)
			}
			c.Close()
		}
		s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Msg() == "closing a connection" })
		s.stop(t)
	})
}
