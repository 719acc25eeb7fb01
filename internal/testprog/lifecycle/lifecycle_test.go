package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
)

var binary string

func TestMain(m *testing.M) {
	proctest.Main(m, "github.com/subordinate/subordinate/internal/testprog/lifecycle", &binary)
}

// A generous deadline: it only bounds a failure.
const soon = 20 * time.Second

const serverName = "lifecycle.test"

// conn is a client connection that has read its greeting.
type conn struct {
	net.Conn
	r          *bufio.Reader
	key        string
	shard, via int
	pid        int
	kinds      string
	tls, hijck bool
}

var greetingRE = regexp.MustCompile(`^shard=(\d+) pid=(\d+) via=(\d+) kinds=(\S+)\n$`)

func open(t *testing.T, addr, key string, tlsCfg *tls.Config) *conn {
	t.Helper()
	d := &net.Dialer{Timeout: soon}
	var (
		nc  net.Conn
		err error
	)
	if tlsCfg != nil {
		nc, err = tls.DialWithDialer(d, "tcp", addr, tlsCfg)
	} else {
		nc, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatalf("dial for %q: %v", key, err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(soon))
	if _, err := fmt.Fprintf(nc, "%s\n", key); err != nil {
		t.Fatal(err)
	}
	c := &conn{Conn: nc, r: bufio.NewReader(nc), key: key, tls: tlsCfg != nil, hijck: strings.HasPrefix(key, "hijack-")}
	line, err := c.r.ReadString('\n')
	m := greetingRE.FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("greeting for %q: %q, %v", key, line, err)
	}
	c.shard, _ = strconv.Atoi(m[1])
	c.pid, _ = strconv.Atoi(m[2])
	c.via, _ = strconv.Atoi(m[3])
	c.kinds = m[4]
	return c
}

// expectedKinds is what the handler must have counted c as.
func (c *conn) expectedKinds(mode string) []string {
	var ks []string
	if c.via != c.shard {
		ks = append(ks, "forwarded")
		// A TLS 1.3 connection is handed off with its session in
		// hand-off mode (--forward-tls auto), as a plain one is.
		if mode == "relay" {
			ks = append(ks, "relayed")
		}
	} else {
		ks = append(ks, "local")
	}
	if c.tls {
		ks = append(ks, "tls")
	}
	if c.hijck {
		ks = append(ks, "hijacked")
	}
	return ks
}

func (c *conn) echo(t *testing.T, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(soon))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatalf("%q: write: %v", c.key, err)
	}
	if line, err := c.r.ReadString('\n'); err != nil || line != msg+"\n" {
		t.Fatalf("%q: echo %q, %v", c.key, line, err)
	}
}

// halfClose shuts down the client's write side and reads to the
// server's close.
func (c *conn) halfClose(t *testing.T) {
	t.Helper()
	c.SetDeadline(time.Now().Add(soon))
	var err error
	switch nc := c.Conn.(type) {
	case *tls.Conn:
		err = nc.CloseWrite()
	case *net.TCPConn:
		err = nc.CloseWrite()
	}
	if err != nil {
		t.Fatalf("%q: close write: %v", c.key, err)
	}
	if rest, err := io.ReadAll(c.r); err != nil || len(rest) > 0 {
		t.Fatalf("%q: after a half-close: %q, %v; want EOF", c.key, rest, err)
	}
}

// TestOpenCloseBalance: every OnOpen gets exactly one OnClose, for every
// kind of connection (local, handed off, relayed, TLS, hijacked), whether
// the client closed it, half-closed it, or left it open until the server
// stopped at its drain deadline or on a second signal; and the handler
// counted each connection as what it is.
func TestOpenCloseBalance(t *testing.T) {
	t.Parallel()
	for _, stop := range []string{"drain-deadline", "second-signal"} {
		for _, mode := range []string{"handoff", "relay"} {
			t.Run(stop+"/"+mode, func(t *testing.T) {
				t.Parallel()
				openCloseBalance(t, stop, mode)
			})
		}
	}
}

func openCloseBalance(t *testing.T, stop, mode string) {
	const workers = 3
	certFile, keyFile, pool := proctest.SelfSigned(t, serverName)
	drain := "1s"
	if stop == "second-signal" {
		drain = "10m"
	}
	p := proctest.Start(t, binary, nil, "--workers", strconv.Itoa(workers), "--forward", mode,
		"--listen", "tcp://127.0.0.1:0", "--listen", "tls://127.0.0.1:0",
		"--cert", certFile, "--key", keyFile, "--drain-timeout", drain)
	started := p.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Msg() == "master started" })
	listen, _ := started["listen"].([]any)
	if len(listen) != 2 {
		t.Fatalf("listen addresses %v, want 2", started["listen"])
	}
	var addrs []string
	for _, a := range listen {
		_, addr, _ := strings.Cut(fmt.Sprint(a), "://")
		addrs = append(addrs, addr)
	}
	for i := 0; i < workers; i++ {
		p.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("worker ready", "shard", i) })
	}
	tlsCfg := &tls.Config{RootCAs: pool, ServerName: serverName}

	// Connections of every kind, local and forwarded, until each of the
	// eight buckets holds a few.
	type bucket struct {
		tls, hijack, forwarded bool
	}
	const perBucket = 4
	buckets := map[bucket][]*conn{}
	full := func() bool {
		for _, tl := range []bool{false, true} {
			for _, hj := range []bool{false, true} {
				for _, fw := range []bool{false, true} {
					if len(buckets[bucket{tl, hj, fw}]) < perBucket {
						return false
					}
				}
			}
		}
		return true
	}
	var all []*conn
	for n := 0; !full(); n++ {
		if n > 2000 {
			t.Fatalf("after %d connections the buckets are %v", n, buckets)
		}
		tl, hj := n%4 >= 2, n%2 == 1
		if len(buckets[bucket{tl, hj, false}]) >= perBucket && len(buckets[bucket{tl, hj, true}]) >= perBucket {
			continue
		}
		key := fmt.Sprintf("conn-%d", n)
		if hj {
			key = "hijack-" + key
		}
		addr, cfg := addrs[0], (*tls.Config)(nil)
		if tl {
			addr, cfg = addrs[1], tlsCfg
		}
		c := open(t, addr, key, cfg)
		if want := strings.Join(c.expectedKinds(mode), ","); c.kinds != want {
			t.Fatalf("%q (tls=%v) on shard %d accepted by %d, --forward %s: counted as %s, want %s", key, tl, c.shard, c.via, mode, c.kinds, want)
		}
		c.echo(t, "hello")
		b := bucket{tl, hj, c.via != c.shard}
		buckets[b] = append(buckets[b], c)
		all = append(all, c)
	}
	// Two clients that never send their key: no OnOpen, no OnClose.
	for i := 0; i < 2; i++ {
		nc, err := net.DialTimeout("tcp", addrs[i%2], soon)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
	}

	// In each bucket, one closed by the client, one half-closed, the
	// rest left open for the stop.
	var left []*conn
	for _, cs := range buckets {
		for j, c := range cs {
			switch j {
			case 0:
				c.Close()
			case 1:
				c.halfClose(t)
				c.Close()
			default:
				c.echo(t, "still here")
				left = append(left, c)
			}
		}
	}

	// The stop.
	p.Signal(syscall.SIGTERM)
	if stop == "second-signal" {
		for i := 0; i < workers; i++ {
			p.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("draining", "shard", i) })
		}
		p.Signal(syscall.SIGTERM)
	}
	if st := p.WaitExit(soon); st.ExitCode() != 0 {
		t.Errorf("exit: %v", st)
	}
	for _, c := range left {
		c.SetReadDeadline(time.Now().Add(soon))
		if _, err := io.ReadAll(c.r); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%q (shard %d via %d) left open after the server stopped", c.key, c.shard, c.via)
		}
	}

	// What the handler of each shard must have counted.
	kinds := []string{"local", "forwarded", "relayed", "tls", "hijacked"}
	want := make([]map[string]int, workers)
	for i := range want {
		want[i] = map[string]int{}
	}
	for _, c := range all {
		want[c.shard][""]++
		for _, k := range c.expectedKinds(mode) {
			want[c.shard][k]++
		}
	}
	logs := p.Logs()
	for i := 0; i < workers; i++ {
		var lines []proctest.Line
		for _, l := range logs {
			if l.Is("lifecycle totals", "shard", i) {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 {
			t.Errorf("shard %d: %d totals lines, want 1 (a worker that did not return from Serve, or restarted)\n%s", i, len(lines), tail(p.Stderr()))
			continue
		}
		l := lines[0]
		if e := l.Str("err"); e != "" {
			t.Errorf("shard %d: Serve returned %q", i, e)
		}
		if l.Int("opens") != want[i][""] {
			t.Errorf("shard %d: %d OnOpen, want %d (one per connection it served)", i, l.Int("opens"), want[i][""])
		}
		if l.Int("closes") != l.Int("opens") {
			t.Errorf("shard %d, --forward %s, stop by %s: %d OnOpen but %d OnClose", i, mode, stop, l.Int("opens"), l.Int("closes"))
		}
		for _, k := range kinds {
			opens, closes := l.Int(k+"_opens"), l.Int(k+"_closes")
			if opens != want[i][k] {
				t.Errorf("shard %d: %d %s OnOpen, want %d", i, opens, k, want[i][k])
			}
			if closes != opens {
				t.Errorf("shard %d, --forward %s, stop by %s: %d %s OnOpen but %d OnClose", i, mode, stop, opens, k, closes)
			}
		}
		if n := l.Int("double_closes"); n != 0 {
			t.Errorf("shard %d: %d OnClose for a connection already closed", i, n)
		}
		if n := l.Int("orphan_closes"); n != 0 {
			t.Errorf("shard %d: %d OnClose for a connection never opened", i, n)
		}
	}
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
