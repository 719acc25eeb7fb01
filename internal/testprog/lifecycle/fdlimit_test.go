package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
)

// try opens a connection for key and reads its first line: it returns the
// connection when the server serves it (its greeting), or nil when the
// server refused it with "-ERR server busy" and closed it. Anything else
// (a close without a line, another line) fails the test.
func try(t *testing.T, addr, key string) *conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, soon)
	if err != nil {
		t.Fatalf("dial for %q: %v", key, err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(soon))
	if _, err := fmt.Fprintf(nc, "%s\n", key); err != nil {
		t.Fatalf("%q: write: %v", key, err)
	}
	r := bufio.NewReader(nc)
	line, err := r.ReadString('\n')
	if line == "-ERR server busy\n" {
		// Refused before its key was read: the close may come as a
		// reset, after the line.
		if rest, err := io.ReadAll(r); (err != nil && !errors.Is(err, syscall.ECONNRESET)) || len(rest) > 0 {
			t.Fatalf("%q: after %q: %q, %v; want a close", key, line, rest, err)
		}
		nc.Close()
		return nil
	}
	m := greetingRE.FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("%q: first line %q, %v; want a greeting or -ERR server busy", key, line, err)
	}
	c := &conn{Conn: nc, r: r, key: key}
	fmt.Sscan(m[1], &c.shard)
	fmt.Sscan(m[3], &c.via)
	return c
}

// noRestarts fails the test if the master saw a worker exit or gave up.
func noRestarts(t *testing.T, p *proctest.Proc) {
	t.Helper()
	for _, l := range p.Logs() {
		switch m := l.Msg(); {
		case m == "worker died", m == "worker exited on its own", m == "worker exited", strings.HasPrefix(m, "SHARD KEEPS FAILING"):
			t.Errorf("%s: %v", m, l)
		}
	}
}

// TestDescriptorLimit: workers under a descriptor limit far below what
// their clients ask for (--max-conns set higher than the limit allows,
// so only the descriptor guard stands between accept and EMFILE) never
// fall over: every new connection is served or refused with -ERR server
// busy, the connections they hold are served on, nothing is restarted,
// and they serve new connections again once clients leave.
func TestDescriptorLimit(t *testing.T) {
	t.Parallel()
	const workers, limit, clients = 3, 256, 600
	p, addr := startLifecycleLimited(t, limit, workers, "--max-conns", "100000")
	var held []*conn
	busy := 0
	for i := range clients {
		if c := try(t, addr, fmt.Sprintf("client-%d", i)); c != nil {
			held = append(held, c)
		} else {
			busy++
		}
	}
	t.Logf("%d clients: %d served, %d refused", clients, len(held), busy)
	if busy == 0 || len(held) == 0 {
		t.Fatalf("%d served, %d refused: want both (%d clients, limit %d per worker)", len(held), busy, clients, limit)
	}
	for _, c := range held {
		c.echo(t, "still here")
	}
	for _, c := range held {
		c.Close()
	}
	// Served again once the workers see the closes: count the attempts.
	for i := 0; ; i++ {
		if c := try(t, addr, fmt.Sprintf("again-%d", i)); c != nil {
			c.echo(t, "again")
			break
		}
		if i == 5000 {
			t.Fatal("still refused after every client left")
		}
		time.Sleep(time.Millisecond)
	}
	noRestarts(t, p)
}

// TestAcceptPause: a worker whose handler takes nearly all its
// descriptors pauses accepting (its next accept would fail, and gnet ends
// the loop on that) and refuses the connections handed to it; the other
// worker takes every new connection meanwhile; the connection it holds is
// served on; once the handler lets its descriptors go, the worker resumes
// accepting on its own. Nothing is restarted.
func TestAcceptPause(t *testing.T) {
	t.Parallel()
	const workers, limit = 2, 256
	p, addr := startLifecycleLimited(t, limit, workers, "--max-conns", "100000")
	// 210 descriptors in shard 0's handler: with its own (about 30),
	// past limit - reserve (36 with one peer), short of the limit.
	hog := open(t, addr, keyOf(0, workers, "hog-210"), nil)
	hog.echo(t, "hungry")
	// Shard 0 sees it at its next connection, local or handed off.
	for i := 0; ; i++ {
		if c := try(t, addr, keyOf(0, workers, fmt.Sprintf("probe%d", i))); c != nil {
			c.Close()
		}
		if logged(p, "accepting paused: descriptors nearly exhausted; serving the open connections", "shard", 0) {
			break
		}
		if i == 1000 {
			t.Fatal("shard 0 never paused accepting")
		}
	}
	// Paused: shard 1 accepts everything; shard 0 refuses what it is
	// handed, and serves what it holds.
	for i := range 50 {
		c := try(t, addr, keyOf(1, workers, fmt.Sprintf("while-paused-%d", i)))
		if c == nil || c.via != 1 {
			t.Fatalf("while shard 0 is paused, a connection for shard 1: %+v; want served, accepted by shard 1", c)
		}
		c.Close()
		if c := try(t, addr, keyOf(0, workers, fmt.Sprintf("refused-%d", i))); c != nil {
			t.Fatalf("while shard 0 is short of descriptors, a connection for it was served")
		}
	}
	hog.echo(t, "still served")
	hog.Close()
	p.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("accepting resumed", "shard", 0) })
	// Shard 0 accepts again: count the attempts until it accepts one.
	for i := 0; ; i++ {
		c := try(t, addr, keyOf(0, workers, fmt.Sprintf("after-%d", i)))
		if c != nil && c.via == 0 {
			c.echo(t, "back")
			break
		}
		if c != nil {
			c.Close()
		}
		if i == 5000 {
			t.Fatal("shard 0 never accepted again")
		}
	}
	noRestarts(t, p)
}

// logged reports whether p has logged a line with msg and the attributes.
func logged(p *proctest.Proc, msg string, kv ...any) bool {
	for _, l := range p.Logs() {
		if l.Is(msg, kv...) {
			return true
		}
	}
	return false
}
