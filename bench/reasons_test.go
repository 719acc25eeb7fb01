package bench

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// replyServer answers every connection's preamble line with reply and
// then holds the connection open without echoing, until the test ends.
func replyServer(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
					return
				}
				c.Write([]byte(reply))
				<-done
			}()
		}
	}()
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestReasons: the first error of each kind is kept as text, and
// MaxErrors ends a run that can only fail without waiting for Duration
// or Timeout (an hour each here).
func TestReasons(t *testing.T) {
	for _, tc := range []struct {
		name, reply, kind, want string
	}{
		{"err line", "-ERR server busy\n", KindPreamble, "the server refused the connection: -ERR server busy"},
		{"err line split", "-E", KindMismatch, `got back "-E"`}, // no more comes: not an -ERR line
		{"not an echo", "joined room=\"k1\" members=1\n", KindMismatch, `sent 64 bytes, got back "joined room=\"k1\" members=1\n" instead of their echo`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Addr: replyServer(t, tc.reply), Conns: 2, Duration: time.Hour, Timeout: time.Hour, MaxErrors: 1}
			if tc.name == "err line split" {
				cfg.Timeout = 200 * time.Millisecond // "-E" could be the start of "-ERR": wait for more, then give up
			}
			res := runOK(t, cfg)
			if res.Requests != 0 || res.Errors[tc.kind] == 0 {
				t.Fatalf("requests %d, errors %v; want a %s error", res.Requests, res.Errors, tc.kind)
			}
			if got := res.Reasons[tc.kind]; !strings.Contains(got, tc.want) {
				t.Errorf("reason %q, want %q", got, tc.want)
			}
			if rep := res.Report(); rep.Reasons[tc.kind] != res.Reasons[tc.kind] {
				t.Errorf("report reasons %v", rep.Reasons)
			}
		})
	}

	// Nothing listening: a connect error, with the dial's own words.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	res := runOK(t, Config{Addr: dead, Conns: 1, Duration: time.Hour, MaxErrors: 3})
	if res.Errors[KindConnect] != 3 || !strings.Contains(res.Reasons[KindConnect], "connection refused") {
		t.Errorf("dead server: errors %v, reasons %v", res.Errors, res.Reasons)
	}
	// A clean run has no reasons.
	srv := startEcho(t, "tcp", "127.0.0.1:0", nil, nil)
	res = runOK(t, Config{Addr: srv.addr(), Conns: 2, Requests: 100})
	if res.Reasons != nil || res.Report().Reasons != nil {
		t.Errorf("clean run: reasons %v", res.Reasons)
	}
	if err := (Config{MaxErrors: -1}).Verify(); err == nil {
		t.Error("MaxErrors -1 accepted")
	}
}
