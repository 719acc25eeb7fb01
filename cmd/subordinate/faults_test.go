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
// caught by the dying worker itself, just a close), never a hang, and
// later ones are served once the shard is back.
func TestOwnerWaitExpires(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 2, "--forward", mode, "--owner-wait", "1ms")
		c := s.find(t, true, 1)
		pid := c.pid
		c.Close()
		// Stop the master from restarting shard 1 quickly: SIGSTOP the master
		// is not an option (it must supervise); instead kill the worker and
		// race new connections against the restart. Each reply must be one of
		// the two valid outcomes.
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		refused, served, lost := 0, 0, 0
		for i := 0; i < 200 && served < 5; i++ {
			conn, err := net.DialTimeout("tcp", s.addr, soon)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(soon))
			fmt.Fprintf(conn, "find-1-%d\n", i)
			line, err := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				t.Fatalf("no reply: %v", err)
			case err != nil:
				// Accepted by the dying worker, or forwarded in the instant
				// its link was going down: closed, not left hanging.
				lost++
			case strings.HasPrefix(line, "-ERR "):
				if !strings.Contains(line, "unavailable") {
					t.Fatalf("refusal %q", line)
				}
				refused++
			case strings.HasPrefix(line, "shard="):
				served++
			default:
				t.Fatalf("reply %q", line)
			}
		}
		if served == 0 {
			t.Fatalf("the restarted shard served nothing (%d refused)", refused)
		}
		t.Logf("%d refused while the owner was down, %d closed as it died, %d served", refused, lost, served)
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
