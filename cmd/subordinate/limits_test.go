package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
)

// dialBusy connects and sends key; it returns the reply when the server
// refused the connection with -ERR (then closed it), or "" with the
// connection when it served it.
func dialBusy(t *testing.T, addr, key string) (string, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, soon)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(soon))
	if _, err := fmt.Fprintf(c, "%s\n", key); err != nil {
		return "write: " + err.Error(), nil
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reply to %q: %q, %v", key, line, err)
	}
	if line[0] == '-' {
		// The worker refuses before it reads the key: the key is left
		// unread, so the close may come as a reset, after the line.
		if rest, err := io.ReadAll(c); (err != nil && !errors.Is(err, syscall.ECONNRESET)) || len(rest) > 0 {
			t.Errorf("after %q: %q, %v; want a close", line, rest, err)
		}
		return line, nil
	}
	return "", c
}

// TestMaxConnsFlag: serve --max-conns 2 with one worker serves two
// connections, refuses a third with -ERR server busy, logs the refusal,
// and serves a new one once one of the two has closed.
func TestMaxConnsFlag(t *testing.T) {
	t.Parallel()
	s := serve(t, 1, "--max-conns", "2")
	var held []net.Conn
	for i := range 2 {
		line, c := dialBusy(t, s.addr, fmt.Sprintf("k%d", i))
		if c == nil {
			t.Fatalf("connection %d refused: %q", i, line)
		}
		held = append(held, c)
	}
	if line, c := dialBusy(t, s.addr, "over"); c != nil || line != "-ERR server busy\n" {
		t.Fatalf("third connection: %q, served=%v; want -ERR server busy", line, c != nil)
	}
	s.WaitLog(soon, 1, func(l proctest.Line) bool {
		return l.Msg() == "refused a connection" && l["reason"] == "server busy"
	})
	held[0].Close()
	// The worker sees the close a moment later: until then a new
	// connection is refused; count the attempts, bounded.
	for i := 0; ; i++ {
		line, c := dialBusy(t, s.addr, "after")
		if c != nil {
			break
		}
		if line != "-ERR server busy\n" {
			t.Fatalf("after a close: %q", line)
		}
		if i == 1000 {
			t.Fatal("still busy after a connection closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
