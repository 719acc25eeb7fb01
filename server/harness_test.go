package server

// An in-process 2-shard server for the runtime tests: two routed runtimes
// (newRoutedRuntime) in the test process, shard 0 and shard 1, each on its
// own gnet loop, sharing one listening socket (each with its own
// duplicate), connected by a mesh socketpair and, in handoff mode, a
// SOCK_SEQPACKET hand-off pair. Real sockets, real gnet loops, real
// SCM_RIGHTS; no worker process.
//
// Besides the shared listener, each shard also accepts on a listener of
// its own (listen index 1), so that a test can choose which worker accepts
// a connection: dial own[0] with a key shard 1 owns and the connection is
// forwarded, always; with enableTLS, a tls:// listener of its own too
// (listen index 2).
//
// The runtimes log into the harness's logBuffer (printed when a test
// fails); every wait is bounded by bound and only turns a hang into a
// failure.

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/ctl"
	"github.com/subordinate/subordinate/internal/handoff"
	"github.com/subordinate/subordinate/shard"
)

// bound bounds every wait of these tests: it only turns a hang into a
// failure, nothing is timed against it.
const bound = 20 * time.Second

var modes = []string{ForwardHandoff, ForwardRelay}

// forModes runs f once per forwarding mode, each as a subtest.
func forModes(t *testing.T, f func(t *testing.T, mode string)) {
	t.Helper()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { f(t, mode) })
	}
}

// harness is a 2-shard server in this process.
type harness struct {
	t    testing.TB
	mode string
	cfg  Config

	shared string    // the listener both shards accept on
	own    [2]string // the listener only shard i accepts on
	ownTLS [2]string // a tls:// listener only shard i accepts on (enableTLS)
	roots  *x509.CertPool

	// Descriptors not yet given to a runtime (closed at cleanup).
	lnFDs [2][]int // shard i's shared, own and own TLS listeners
	peers [2]*peerFiles
	h     [2]*testHandler
	// factory, if set before start, makes the shards' handlers instead
	// of returning h[i].
	factory HandlerFactory
	rt      [2]*routed
	served  [2]chan error
	logs    *logBuffer
}

// newHarness prepares a 2-shard server in mode (ForwardHandoff or
// ForwardRelay); tweak may change the config. No shard runs yet: see
// start.
func newHarness(t testing.TB, mode string, tweak func(*Config)) *harness {
	t.Helper()
	hs := &harness{t: t, mode: mode, logs: &logBuffer{}}
	shared := listenTCP(t)
	hs.shared = shared.Addr().String()
	for i := range 2 {
		own := listenTCP(t)
		hs.own[i] = own.Addr().String()
		hs.lnFDs[i] = []int{dupListener(t, shared), dupListener(t, own)}
		own.Close() // the duplicate keeps the socket
	}
	shared.Close()

	m0, m1, err := ctl.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	hs.peers[0], hs.peers[1] = &peerFiles{Mesh: m0}, &peerFiles{Mesh: m1}
	if mode == ForwardHandoff {
		h0, h1, err := handoff.Pair()
		if err != nil {
			t.Fatal(err)
		}
		hs.peers[0].Handoff, hs.peers[1].Handoff = h0, h1
	}

	hs.cfg = DefaultConfig()
	hs.cfg.Workers = 2
	hs.cfg.Forward = mode
	// The session hand-off, and the splice for what cannot move, whatever
	// this machine's CPUs (ForwardTLSAuto would relay on one CPU).
	hs.cfg.ForwardTLS = ForwardTLSHandoff
	hs.cfg.Secret = []byte("in-process test secret")
	hs.cfg.Listen = []string{"tcp://" + hs.shared} // and each shard's own: see start
	hs.cfg.Logger = slog.New(slog.NewTextHandler(hs.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if tweak != nil {
		tweak(&hs.cfg)
	}
	for i := range 2 {
		hs.h[i] = newTestHandler(i)
	}
	t.Cleanup(hs.cleanup)
	return hs
}

// setListenerOption sets a socket option on every listening socket
// before the shards start; accepted sockets inherit it (SO_SNDBUF, say).
func (hs *harness) setListenerOption(level, opt, value int) {
	hs.t.Helper()
	for i := range 2 {
		for _, fd := range hs.lnFDs[i] {
			if fd < 0 {
				hs.t.Fatal("setListenerOption after start")
			}
			if err := syscall.SetsockoptInt(fd, level, opt, value); err != nil {
				hs.t.Fatal(err)
			}
		}
	}
}

// takePeer returns shard i's ends of its links to the other shard; the
// caller owns them.
func (hs *harness) takePeer(i int) peerFiles {
	p := hs.peers[i]
	if p == nil {
		hs.t.Fatalf("shard %d's peer links already taken", i)
	}
	hs.peers[i] = nil
	return *p
}

// start runs shard i; with withPeer it gets its links to the other shard
// at once (otherwise the test gives them later, with SetPeer, or never).
func (hs *harness) start(i int, withPeer bool) *routed {
	hs.t.Helper()
	r, err := hs.tryStart(i, withPeer)
	if err != nil {
		hs.t.Fatalf("shard %d stopped before it was ready: %v", i, err)
	}
	return r
}

// tryStart is start, returning what Serve returned if the shard stopped
// before it was ready.
func (hs *harness) tryStart(i int, withPeer bool) (*routed, error) {
	t := hs.t
	t.Helper()
	cfg := hs.cfg
	addrs := []string{hs.shared, hs.own[i]}
	cfg.Listen = []string{"tcp://" + hs.shared, "tcp://" + hs.own[i]}
	if hs.ownTLS[i] != "" {
		addrs = append(addrs, hs.ownTLS[i])
		cfg.Listen = append(cfg.Listen, "tls://"+hs.ownTLS[i])
	}
	info := &shardInfo{
		Index:   i,
		Count:   2,
		Config:  cfg,
		Secret:  cfg.Secret,
		Factory: hs.factory,
		Logger:  cfg.Logger.With("shard", i),
		Peers:   map[int]peerFiles{},
	}
	for j, addr := range addrs {
		info.Listeners = append(info.Listeners, shardListener{
			URL: cfg.Listen[j], Network: "tcp", Address: addr, FD: hs.lnFDs[i][j],
		})
		hs.lnFDs[i][j] = -1 // the runtime owns it now
	}
	if info.Factory == nil {
		info.Factory = func(*Shard) (Handler, error) { return hs.h[i], nil }
	}
	if withPeer {
		info.Peers[1-i] = hs.takePeer(i)
	}
	rt, err := newRoutedRuntime(info)
	if err != nil {
		t.Fatal(err)
	}
	r := rt.(*routed)
	hs.rt[i] = r
	served := make(chan error, 1)
	hs.served[i] = served
	ready := make(chan struct{})
	go func() { served <- r.Serve(func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-served:
		hs.served[i] = nil
		if err == nil {
			err = errors.New("Serve returned nil")
		}
		return nil, err
	case <-time.After(bound):
		t.Fatalf("shard %d not ready", i)
	}
	return r, nil
}

// startBoth runs both shards, linked.
func (hs *harness) startBoth() {
	hs.start(0, true)
	hs.start(1, true)
}

// stop stops shard i and waits until its Serve has returned.
func (hs *harness) stop(i int) {
	hs.t.Helper()
	if hs.served[i] == nil {
		return
	}
	hs.rt[i].Stop()
	hs.waitServed(i)
}

// waitServed waits until Serve of shard i has returned.
func (hs *harness) waitServed(i int) {
	hs.t.Helper()
	select {
	case err := <-hs.served[i]:
		hs.served[i] = nil
		if err != nil {
			hs.t.Errorf("shard %d: Serve: %v", i, err)
		}
	case <-time.After(bound):
		hs.served[i] = nil
		hs.t.Errorf("shard %d: Serve has not returned", i)
	}
}

func (hs *harness) stopAll() {
	hs.t.Helper()
	hs.stop(0)
	hs.stop(1)
}

func (hs *harness) cleanup() {
	hs.stopAll()
	for i := range 2 {
		for _, fd := range hs.lnFDs[i] {
			if fd >= 0 {
				syscall.Close(fd)
			}
		}
		hs.lnFDs[i] = nil
		if hs.peers[i] != nil {
			hs.peers[i].Close()
			hs.peers[i] = nil
		}
	}
	if hs.t.Failed() {
		hs.t.Logf("logs of the shards:\n%s", hs.logs.String())
	}
}

// listenTCP binds a loopback listener, as the master does.
func listenTCP(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// dupListener returns a close-on-exec duplicate of ln's socket, for a
// runtime to own.
func dupListener(t testing.TB, ln net.Listener) int {
	t.Helper()
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	dup := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { dup, derr = syscall.Dup(int(fd)) }); err != nil {
		t.Fatal(err)
	}
	if derr != nil {
		t.Fatal(derr)
	}
	syscall.CloseOnExec(dup)
	return dup
}

// keyFor returns a key that shard owner owns among 2, distinct per tag
// and n.
func keyFor(owner int, tag string, n int) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s-%d-%d", tag, n, i)
		if shard.Owner([]byte(k), 2) == owner {
			return k
		}
	}
}

// logBuffer collects the shards' logs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count returns how many log lines contain all of subs.
func (l *logBuffer) count(subs ...string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		all := line != ""
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

// waitLog waits until n lines contain all of subs.
func (l *logBuffer) waitLog(t *testing.T, n int, subs ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d log lines with %q", n, subs), func() bool { return l.count(subs...) >= n })
}

// waitFor polls cond until it holds, failing the test after bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testHandler is the Handler of one shard. By default it writes an info
// line on OnOpen (what the Conn says of itself), echoes every byte, and
// closes on EOF; a key that starts with "hj-" is hijacked in OnOpen and
// echoed by a goroutine. Hooks replace those behaviours. It checks the
// Handler contract as it goes: OnOpen first, exactly one OnClose, nothing
// after it.
type testHandler struct {
	shard int

	// Hooks, set before the shard starts; nil means the default.
	open  func(c *Conn)
	data  func(c *Conn)
	eof   func(c *Conn)
	close func(c *Conn, err error)

	mu       sync.Mutex
	opens    int
	closes   int
	eofs     int
	live     map[*Conn]bool
	done     map[*Conn]bool
	closeErr map[string]error // by key, for the tests that look
	problems []string
	changed  chan struct{} // closed and replaced on every OnOpen/OnClose
}

func newTestHandler(shard int) *testHandler {
	return &testHandler{
		shard: shard, live: map[*Conn]bool{}, done: map[*Conn]bool{},
		closeErr: map[string]error{}, changed: make(chan struct{}),
	}
}

func (h *testHandler) problem(format string, args ...any) {
	h.problems = append(h.problems, fmt.Sprintf(format, args...))
}

// notify wakes waiters; h.mu is held.
func (h *testHandler) notify() {
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *testHandler) checkLive(c *Conn, method string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.done[c]:
		h.problem("%s after OnClose (key %q)", method, c.Key())
	case !h.live[c]:
		h.problem("%s before OnOpen (key %q)", method, c.Key())
	}
}

func (h *testHandler) OnOpen(c *Conn) {
	h.mu.Lock()
	if h.live[c] || h.done[c] {
		h.problem("OnOpen twice (key %q)", c.Key())
	}
	if c.Shard().Index() != h.shard {
		h.problem("OnOpen on shard %d for a Conn of shard %d", h.shard, c.Shard().Index())
	}
	h.opens++
	h.live[c] = true
	h.notify()
	h.mu.Unlock()
	if h.open != nil {
		h.open(c)
		return
	}
	defaultOpen(c)
}

// infoLine is what the default OnOpen writes: what the Conn says of
// itself.
func infoLine(c *Conn) string {
	return fmt.Sprintf("shard=%d via=%d fwd=%t relayed=%t direct=%t tls=%t key=%s remote=%s local=%s\n",
		c.Shard().Index(), c.AcceptedBy(), c.Forwarded(), c.Relayed(), c.Direct(), c.TLS() != nil, c.Key(), c.RemoteAddr(), c.LocalAddr())
}

func defaultOpen(c *Conn) {
	info := infoLine(c)
	if !bytes.HasPrefix(c.Key(), []byte("hj-")) {
		_, _ = c.Write([]byte(info))
		return
	}
	nc, err := c.Hijack()
	if err != nil {
		_, _ = c.Write([]byte("-ERR hijack: " + err.Error() + "\n"))
		_ = c.Close()
		return
	}
	go func() {
		defer nc.Close()
		if _, err := io.WriteString(nc, info); err != nil {
			return
		}
		_, _ = io.Copy(nc, nc)
	}()
}

func (h *testHandler) OnData(c *Conn) {
	h.checkLive(c, "OnData")
	if h.data != nil {
		h.data(c)
		return
	}
	b, _ := c.Next(-1)
	_, _ = c.Write(b)
}

func (h *testHandler) OnEOF(c *Conn) {
	h.checkLive(c, "OnEOF")
	h.mu.Lock()
	h.eofs++
	h.notify()
	h.mu.Unlock()
	switch {
	case h.eof != nil:
		h.eof(c)
	case bytes.HasPrefix(c.Key(), []byte("keep-")):
		// The connection stays open, half-closed, until the shard
		// stops.
	default:
		_ = c.Close()
	}
}

func (h *testHandler) OnClose(c *Conn, err error) {
	h.mu.Lock()
	switch {
	case h.done[c]:
		h.problem("OnClose twice (key %q, err %v)", c.Key(), err)
	case !h.live[c]:
		h.problem("OnClose without OnOpen (key %q, err %v)", c.Key(), err)
	}
	delete(h.live, c)
	h.done[c] = true
	h.closes++
	h.closeErr[string(c.Key())] = err
	h.notify()
	h.mu.Unlock()
	if h.close != nil {
		h.close(c, err)
	}
}

// counts returns the number of OnOpen and OnClose calls so far.
func (h *testHandler) counts() (opens, closes int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.opens, h.closes
}

// waitCounts waits until cond holds of the counts.
func (h *testHandler) waitCounts(t *testing.T, what string, cond func(opens, closes int) bool) {
	t.Helper()
	timeout := time.After(bound)
	for {
		h.mu.Lock()
		ok, ch := cond(h.opens, h.closes), h.changed
		o, c := h.opens, h.closes
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("shard %d: still waiting for %s (OnOpen %d, OnClose %d)", h.shard, what, o, c)
		}
	}
}

// errOf returns the error OnClose got for the connection of key, and
// whether it has been called.
func (h *testHandler) errOf(key string) (error, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	err, ok := h.closeErr[key]
	return err, ok
}

// checkBalanced fails the test unless every OnOpen has had exactly one
// OnClose and the contract held.
func (h *testHandler) checkBalanced(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.opens != h.closes || len(h.live) != 0 {
		keys := []string{}
		for c := range h.live {
			keys = append(keys, fmt.Sprintf("%q", c.Key()))
		}
		t.Errorf("shard %d: %d OnOpen, %d OnClose; never closed: %s", h.shard, h.opens, h.closes, strings.Join(keys, " "))
	}
	for _, p := range h.problems {
		t.Errorf("shard %d: %s", h.shard, p)
	}
}

// client is a test client connection.
type client struct {
	net.Conn
	r *bufio.Reader
}

// dialRaw connects to addr and sends the preamble of key and early in
// one write.
func dialRaw(t *testing.T, addr, key string, early []byte) *client {
	t.Helper()
	return dialBytes(t, addr, append([]byte(key+"\n"), early...))
}

// dialBytes connects to addr and sends msg in one write.
func dialBytes(t *testing.T, addr string, msg []byte) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(bound))
	if _, err := nc.Write(msg); err != nil {
		t.Fatal(err)
	}
	return &client{Conn: nc, r: bufio.NewReader(nc)}
}

// dialNoT connects to addr, for a goroutine that has no testing.T.
func dialNoT(addr string) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(bound))
	return &client{Conn: nc, r: bufio.NewReader(nc)}, nil
}

// info is the parsed info line of a connection.
type info map[string]string

// dial connects, sends the preamble and early bytes, and reads the info
// line the default OnOpen writes.
func dial(t *testing.T, addr, key string, early []byte) (*client, info) {
	t.Helper()
	c := dialRaw(t, addr, key, early)
	return c, c.readInfo(t)
}

func (c *client) readInfo(t *testing.T) info {
	t.Helper()
	line, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read the info line: %q, %v", line, err)
	}
	if strings.HasPrefix(line, "-ERR") {
		t.Fatalf("refused: %q", line)
	}
	in := info{}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		in[k] = v
	}
	return in
}

// echo sends msg and reads it back.
func (c *client) echo(t *testing.T, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c.r, buf); err != nil {
		t.Fatalf("read the echo of %q: %v", msg, err)
	}
	if string(buf) != msg {
		t.Fatalf("echo %q, want %q", buf, msg)
	}
}

// expect reads len(want) bytes and checks they are want.
func (c *client) expect(t *testing.T, want string) {
	t.Helper()
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c.r, buf); err != nil || string(buf) != want {
		t.Fatalf("read %q, %v; want %q", buf, err, want)
	}
}

// readAll reads until EOF.
func (c *client) readAll(t *testing.T) []byte {
	t.Helper()
	b, err := io.ReadAll(c.r)
	if err != nil {
		t.Fatalf("read to EOF: %v (after %d bytes)", err, len(b))
	}
	return b
}

// resetClose closes with an RST (SO_LINGER 0).
func (c *client) resetClose() {
	_ = c.Conn.(*net.TCPConn).SetLinger(0)
	_ = c.Close()
}

// countFDs counts this process's open descriptors.
func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// goroutines returns the stacks of this process's goroutines by id,
// leaving out gnet's worker pool (ants) when it runs none of gnet's work:
// its idle workers live on for seconds by design.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		id, _, ok := strings.Cut(strings.TrimPrefix(head, "goroutine "), " ")
		if !ok || (strings.Contains(g, "panjf2000/ants") && !strings.Contains(g, "panjf2000/gnet")) {
			continue // an idle worker of the pool, or the pool's own
		}
		out[id] = g
	}
	return out
}

// newGoroutines waits (bounded) until no goroutine of this package, gnet,
// smux or the net poller runs that was not in before, and returns those
// still there.
// Goroutines whose stack contains one of ignore are left out.
func newGoroutines(before map[string]string, wait time.Duration, ignore ...string) []string {
	deadline := time.Now().Add(wait)
	for {
		var extra []string
	next:
		for id, g := range goroutines() {
			if _, ok := before[id]; ok {
				continue
			}
			for _, s := range ignore {
				if strings.Contains(g, s) {
					continue next
				}
			}
			ours := strings.Contains(g, "subordinate/subordinate/") || strings.Contains(g, "panjf2000/gnet") || strings.Contains(g, "xtaci/smux")
			if ours && !strings.Contains(g, "testing.tRunner") { // not a test's own goroutine
				extra = append(extra, g)
			}
		}
		if len(extra) == 0 || time.Now().After(deadline) {
			return extra
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// errIsClosed reports whether err is what a client sees of a closed
// connection.
func errIsClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
