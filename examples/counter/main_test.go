package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
)

// TestCounter runs the example as real processes: every increment of one
// counter, made over many connections through whichever worker accepts
// them, lands in the one shard that owns the key.
func TestCounter(t *testing.T) {
	dir := t.TempDir()
	bin, err := proctest.Build("github.com/subordinate/subordinate/examples/counter", dir, proctest.RaceEnabled)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p := proctest.Start(t, bin, nil, "--listen", "tcp://"+addr, "--workers", "3")
	for i := 0; i < 3; i++ {
		p.WaitLog(20*time.Second, 1, func(l proctest.Line) bool { return l.Is("worker ready", "shard", i) })
	}
	const conns = 30
	var last string
	for i := 0; i < conns; i++ {
		c, err := net.DialTimeout("tcp", addr, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "visits\nincr\n")
		last, err = bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%d ", i+1); !strings.HasPrefix(last, want) {
			t.Fatalf("increment %d answered %q", i+1, last)
		}
	}
	p.Signal(syscall.SIGTERM)
	if st := p.WaitExit(20 * time.Second); st.ExitCode() != 0 {
		t.Fatalf("exit: %v", st)
	}
	_ = os.Remove(bin)
}
