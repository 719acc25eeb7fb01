package nodelink

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/cluster"
)

// startNamed starts node self of addrs on ln, answering each line of a
// stream with "<name>: <line>" until the stream ends.
func startNamed(t *testing.T, c *ca, addrs []string, self int, ln net.Listener, name string) *Links {
	t.Helper()
	certFile, keyFile := c.node(t, name)
	cfg, err := TLSConfig(certFile, keyFile, c.file)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Start(Config{
		Members: cluster.Members{Nodes: addrs, Self: self}, Workers: 1, TLS: cfg, Listener: ln,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logBuf{}, nil)),
		Accept: func(peer int, s *Stream) {
			defer s.Close()
			r := bufio.NewReader(s)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprintf(s, "%s: %s", name, line)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// held is a stream kept open across a drain.
type held struct {
	s net.Conn
	r *bufio.Reader
}

func hold(t *testing.T, l *Links, peer int) *held {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	s, err := l.Open(ctx, peer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &held{s: s, r: bufio.NewReader(s)}
}

func (h *held) ask(t *testing.T, line string) string {
	t.Helper()
	_ = h.s.SetDeadline(time.Now().Add(bound))
	if _, err := fmt.Fprintf(h.s, "%s\n", line); err != nil {
		t.Fatalf("held stream: %v", err)
	}
	got, err := h.r.ReadString('\n')
	if err != nil {
		t.Fatalf("held stream: %v", err)
	}
	return strings.TrimSpace(got)
}

// TestLinksDrain: a node's worker that drains (a binary upgrade) hands
// its links to its successor: the peers' new streams reach the successor,
// whichever end dials, and a stream open across the drain goes on.
func TestLinksDrain(t *testing.T) {
	for _, drained := range []int{0, 1} { // node 0 dials node 1
		t.Run(fmt.Sprintf("node %d drains", drained), func(t *testing.T) {
			c := newCA(t, "cluster")
			lns, addrs := listeners(t, 2)
			nodes := []*Links{
				startNamed(t, c, addrs, 0, lns[0], "old 0"),
				startNamed(t, c, addrs, 1, lns[1], "old 1"),
			}
			other := 1 - drained
			h := hold(t, nodes[other], drained)
			if got := h.ask(t, "before"); got != fmt.Sprintf("old %d: before", drained) {
				t.Fatalf("held stream before the drain: %q", got)
			}
			// The successor shares the listening socket, as a new worker
			// gets the master's: a duplicate of the listener.
			f, err := lns[drained].(*net.TCPListener).File()
			if err != nil {
				t.Fatal(err)
			}
			dup, err := net.FileListener(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			succ := startNamed(t, c, addrs, drained, dup, fmt.Sprintf("new %d", drained))
			nodes[drained].Drain()
			want := fmt.Sprintf("new %d: after", drained)
			deadline := time.Now().Add(bound)
			for {
				got, err := ask(t, &testNode{links: nodes[other]}, drained, "after")
				if err == nil && strings.TrimSpace(got) == strings.TrimSpace(want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the drain, node %d's new streams get %q, %v; want %q", other, got, err, want)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got := h.ask(t, "during"); got != fmt.Sprintf("old %d: during", drained) {
				t.Fatalf("held stream after the drain: %q", got)
			}
			_ = succ
		})
	}
}
