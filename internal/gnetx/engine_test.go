package gnetx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// echo is a test handler: it echoes and records, per connection, which
// listener accepted it and the goroutine that ran the callbacks.
type echo struct {
	gnet.BuiltinEventEngine
	e *Engine

	mu        sync.Mutex
	listeners []int
	locals    []string
	goids     map[uint64]bool
	opened    int
	closed    int
	boot      gnet.Action
	ctxs      []any    // Context of each connection in OnOpen
	remotes   []string // RemoteAddr of each connection in OnOpen
}

func (h *echo) OnBoot(gnet.Engine) gnet.Action { return h.boot }

func (h *echo) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.opened++
	h.goids[goid()] = true
	h.listeners = append(h.listeners, h.e.Listener(c))
	h.ctxs = append(h.ctxs, c.Context())
	if a := c.RemoteAddr(); a != nil {
		h.remotes = append(h.remotes, a.String())
	}
	if a, err := h.e.LocalAddr(c); err == nil {
		h.locals = append(h.locals, a.String())
	}
	return nil, gnet.None
}

func (h *echo) OnTraffic(c gnet.Conn) gnet.Action {
	h.mu.Lock()
	h.goids[goid()] = true
	h.mu.Unlock()
	b, _ := c.Next(-1)
	_, _ = c.Write(b)
	return gnet.None
}

func (h *echo) OnClose(gnet.Conn, error) gnet.Action {
	h.mu.Lock()
	h.closed++
	h.mu.Unlock()
	return gnet.None
}

func goid() uint64 {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	n, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return n
}

// masterListener binds a listener the way the master does and returns it
// (the master's copy, which the test may Accept on) and a duplicate
// descriptor to hand to Start.
func masterListener(t *testing.T, network, addr string) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	dup := -1
	rc.Control(func(fd uintptr) { dup, err = syscall.Dup(int(fd)) })
	if err != nil {
		t.Fatal(err)
	}
	syscall.CloseOnExec(dup)
	return ln, dup
}

func start(t *testing.T, h *echo, lns ...Listener) *Engine {
	t.Helper()
	h.goids = map[uint64]bool{}
	e := New(Config{Listeners: lns, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.e = e
	if err := e.Start(h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return e
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read echo of %q: %v", msg, err)
	}
	if string(buf) != msg {
		t.Fatalf("echo %q, want %q", buf, msg)
	}
}

func dial(t *testing.T, a net.Addr) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(a.Network(), a.String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/dev/fd")
	if err != nil {
		t.Skip("no /dev/fd")
	}
	return len(ents)
}

func TestAdoptTCPAndUnix(t *testing.T) {
	tcp, tfd := masterListener(t, "tcp", "127.0.0.1:0")
	sock := filepath.Join(t.TempDir(), "s.sock")
	unixLn, ufd := masterListener(t, "unix", sock)
	tcp2, tfd2 := masterListener(t, "tcp", "127.0.0.1:0")
	h := &echo{}
	e := start(t, h,
		Listener{FD: tfd, Addr: tcp.Addr()},
		Listener{FD: ufd, Addr: unixLn.Addr()},
		Listener{FD: tfd2, Addr: tcp2.Addr()})

	for i, a := range []net.Addr{tcp.Addr(), unixLn.Addr(), tcp2.Addr()} {
		if got := e.Addr(i); got.String() != a.String() {
			t.Errorf("Addr(%d) = %v, want %v", i, got, a)
		}
		c := dial(t, a)
		roundTrip(t, c, fmt.Sprintf("hello %d\n", i))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if fmt.Sprint(h.listeners) != "[0 1 2]" {
		t.Errorf("Listener() per connection = %v, want [0 1 2]", h.listeners)
	}
	want := []string{tcp.Addr().String(), sock, tcp2.Addr().String()}
	if fmt.Sprint(h.locals) != fmt.Sprint(want) {
		t.Errorf("LocalAddr per connection = %v, want %v", h.locals, want)
	}
	if len(h.goids) != 1 {
		t.Errorf("callbacks ran on %d goroutines, want the one loop", len(h.goids))
	}
}

// TestStartTakesOwnership checks that the descriptors given to Start are
// closed and that a stopped engine leaves no descriptor behind.
func TestNoDescriptorLeak(t *testing.T) {
	tcp, tfd := masterListener(t, "tcp", "127.0.0.1:0")
	before := countFDs(t)
	e := New(Config{Listeners: []Listener{{FD: tfd, Addr: tcp.Addr()}}})
	h := &echo{goids: map[uint64]bool{}, e: e}
	if err := e.Start(h); err != nil {
		t.Fatal(err)
	}
	c := dial(t, tcp.Addr())
	roundTrip(t, c, "x")
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after Stop: %v, want EOF", err)
	}
	c.Close()
	// The dup handed to Start is gone too: one less than before. gnet
	// closes the last of its descriptors as its goroutines finish, a
	// moment after Stop returns: wait for the count, bounded.
	after := countFDs(t)
	for i := 0; after != before-1 && i < 1000; i++ {
		time.Sleep(5 * time.Millisecond)
		after = countFDs(t)
	}
	if after != before-1 {
		t.Fatalf("%d descriptors open after Stop, %d before Start (which took one)", after, before)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.opened != 1 || h.closed != 1 {
		t.Fatalf("opened %d closed %d, want 1 1 (the anchor must stay hidden)", h.opened, h.closed)
	}
}

// TestRunOnLoop checks that Run runs the function on the goroutine of the
// handler's callbacks.
func TestRunOnLoop(t *testing.T) {
	tcp, tfd := masterListener(t, "tcp", "127.0.0.1:0")
	h := &echo{}
	e := start(t, h, Listener{FD: tfd, Addr: tcp.Addr()})
	got := make(chan uint64, 1)
	if err := e.Run(func() { got <- goid() }); err != nil {
		t.Fatal(err)
	}
	id := <-got
	roundTrip(t, dial(t, tcp.Addr()), "x")
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.goids[id] || len(h.goids) != 1 {
		t.Fatalf("Run ran on goroutine %d, callbacks on %v", id, h.goids)
	}
}

// TestStopAccepting: after StopAccepting the open connection is served,
// the loop goes on, and every new connection waits on the master's copy of
// the socket (the test accepts them there) instead of being taken by the
// loop.
func TestStopAccepting(t *testing.T) {
	tcp, tfd := masterListener(t, "tcp", "127.0.0.1:0")
	h := &echo{}
	e := start(t, h, Listener{FD: tfd, Addr: tcp.Addr()})
	old := dial(t, tcp.Addr())
	roundTrip(t, old, "before")

	gnetFD := e.lns[0].fd
	var st syscall.Stat_t
	if err := syscall.Fstat(gnetFD, &st); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if err := e.Run(func() { done <- e.StopAccepting() }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	roundTrip(t, old, "after")

	const n = 20
	for i := 0; i < n; i++ {
		dial(t, tcp.Addr())
	}
	tcp.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < n; i++ {
		c, err := tcp.Accept()
		if err != nil {
			t.Fatalf("connection %d did not wait for the master: %v (the loop still accepts?)", i, err)
		}
		c.Close()
	}
	h.mu.Lock()
	opened := h.opened
	h.mu.Unlock()
	if opened != 1 {
		t.Fatalf("the loop opened %d connections, want only the first", opened)
	}

	if runtime.GOOS == "linux" {
		if link, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", gnetFD)); link != "/dev/null" {
			t.Errorf("descriptor %d is %q after StopAccepting, want /dev/null", gnetFD, link)
		}
		// No epoll instance of the process watches the socket any more,
		// but the Go runtime's, for the test's own listener.
		var own int
		rc, _ := tcp.(syscall.Conn).SyscallConn()
		rc.Control(func(fd uintptr) { own = int(fd) })
		for _, w := range epollEntries(t, st.Ino) {
			if w != own {
				t.Errorf("an epoll instance still watches the socket as descriptor %d", w)
			}
		}
	}
	// The loop is alive and serves.
	roundTrip(t, old, "still")
	if err := e.Run(func() { done <- e.StopAccepting() }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("StopAccepting twice: %v", err)
	}
}

// epollEntries returns the descriptor numbers under which epoll instances
// of this process watch the file with inode ino.
func epollEntries(t *testing.T, ino uint64) []int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, ent := range ents {
		if link, _ := os.Readlink("/proc/self/fd/" + ent.Name()); link != "anon_inode:[eventpoll]" {
			continue
		}
		f, err := os.Open("/proc/self/fdinfo/" + ent.Name())
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			if len(fl) < 2 || fl[0] != "tfd:" {
				continue
			}
			for _, x := range fl {
				if v, ok := strings.CutPrefix(x, "ino:"); ok {
					if n, _ := strconv.ParseUint(v, 16, 64); n == ino {
						tfd, _ := strconv.Atoi(fl[1])
						out = append(out, tfd)
					}
				}
			}
		}
		f.Close()
	}
	return out
}

func TestBind(t *testing.T) {
	rfd, port, err := reservePort()
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(rfd)
	h := &echo{}
	bind := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	e := start(t, h, Listener{FD: -1, Bind: bind})
	if got := e.Addr(0).String(); got != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("Addr(0) = %s", got)
	}
	roundTrip(t, dial(t, e.Addr(0)), "bound")
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.listeners[0] != 0 {
		t.Fatalf("Listener() = %d, want 0", h.listeners[0])
	}
}

func startErr(h gnet.EventHandler, lns ...Listener) error {
	return New(Config{Listeners: lns}).Start(h)
}

func TestStartErrors(t *testing.T) {
	if err := startErr(&echo{}); !errors.Is(err, ErrNoListeners) {
		t.Errorf("no listeners: %v", err)
	}
	if err := startErr(&echo{}, Listener{FD: -1, Bind: "unix:///tmp/x"}); err == nil {
		t.Errorf("unix bind accepted")
	}
	if err := startErr(&echo{}, Listener{FD: -1, Bind: "tcp://127.0.0.1:0"}); err == nil {
		t.Errorf("bind to port 0 accepted")
	}
	// A handler that refuses to boot: Start reports ErrStopped and the
	// descriptor it was given is closed.
	tcp, tfd := masterListener(t, "tcp", "127.0.0.1:0")
	err := startErr(&echo{boot: gnet.Shutdown, goids: map[uint64]bool{}}, Listener{FD: tfd, Addr: tcp.Addr()})
	if !errors.Is(err, ErrStopped) {
		t.Errorf("OnBoot Shutdown: %v, want ErrStopped", err)
	}
	if _, err := syscall.Dup(tfd); err == nil {
		t.Errorf("descriptor given to Start still open after a failed Start")
	}
	// Not a listening socket.
	pr, pw, _ := os.Pipe()
	defer pw.Close()
	pfd, _ := syscall.Dup(int(pr.Fd()))
	pr.Close()
	if err := startErr(&echo{goids: map[uint64]bool{}}, Listener{FD: pfd}); err == nil {
		t.Errorf("a pipe was adopted as a listener")
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := Logger{L: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	l.Infof("launching %d", 1)
	l.Warnf("careful %s", "now")
	l.Errorf("broken %v", errors.New("x"))
	out := buf.String()
	if strings.Contains(out, "launching") || !strings.Contains(out, "msg=\"careful now\"") ||
		!strings.Contains(out, "level=ERROR msg=\"broken x\" component=gnet") {
		t.Fatalf("log output:\n%s", out)
	}
	Logger{}.Errorf("nil logger is fine")
	_ = context.Background
}
