package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/handoff"
)

// readRefusal reads what a refused client gets: one -ERR line, then EOF.
func readRefusal(t *testing.T, c *client) string {
	t.Helper()
	b, err := io.ReadAll(c.r)
	if err != nil && !errIsClosed(err) {
		t.Fatalf("read the refusal: %q, %v", b, err)
	}
	return string(b)
}

// TestOwnerUnavailable: a connection whose owner's link is down gets
// "-ERR shard 1 unavailable" once OwnerWait has passed, never a silent
// close: when the owner never came up (no links to it), and when it has
// stopped. The accepting shard serves its own keys all along.
func TestOwnerUnavailable(t *testing.T) {
	t.Parallel()
	const want = "-ERR shard 1 unavailable\n"
	forModes(t, func(t *testing.T, mode string) {
		t.Run("never up", func(t *testing.T) {
			hs := newHarness(t, mode, func(c *Config) { c.OwnerWait = 20 * time.Millisecond })
			hs.start(0, false)
			for i := range 3 {
				c := dialRaw(t, hs.own[0], keyFor(1, "orphan", i), []byte("early"))
				if got := readRefusal(t, c); got != want {
					t.Errorf("connection %d: got %q, want %q", i, got, want)
				}
				c.Close()
			}
			c, _ := dial(t, hs.own[0], keyFor(0, "mine", 0), nil)
			c.echo(t, "still served\n")
			c.Close()
			hs.stop(0)
			hs.h[0].checkBalanced(t)
		})
		t.Run("stopped", func(t *testing.T) {
			hs := newHarness(t, mode, func(c *Config) { c.OwnerWait = 20 * time.Millisecond })
			hs.startBoth()
			c, _ := dial(t, hs.own[0], keyFor(1, "before", 0), nil)
			c.echo(t, "served by 1\n")
			c.Close()
			hs.stop(1)
			for i := range 3 {
				c := dialRaw(t, hs.own[0], keyFor(1, "after", i), []byte("early"))
				if got := readRefusal(t, c); got != want {
					t.Errorf("connection %d: got %q, want %q", i, got, want)
				}
				c.Close()
			}
			c, _ = dial(t, hs.own[0], keyFor(0, "mine", 0), nil)
			c.echo(t, "still served\n")
			c.Close()
			hs.stop(0)
			hs.h[0].checkBalanced(t)
			hs.h[1].checkBalanced(t)
		})
	})
}

// TestOwnerBackWithinOwnerWait: a connection for a shard whose links are
// not there yet waits for them, and is served once SetPeer brings them
// within OwnerWait (here a bound on the test only).
func TestOwnerBackWithinOwnerWait(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, func(c *Config) { c.OwnerWait = bound })
		r0 := hs.start(0, false)
		key := keyFor(1, "patient", 0)
		c := dialRaw(t, hs.own[0], key, []byte("early|"))
		// Once its preamble is read the connection waits for its owner,
		// on a goroutine of its own.
		waiter := "server.(*routed).handOffLater"
		if mode == ForwardRelay {
			waiter = "server.(*routed).forwardConn"
		}
		waitFor(t, "the connection to wait for its owner", func() bool {
			for _, g := range goroutines() {
				if strings.Contains(g, waiter) {
					return true
				}
			}
			return false
		})
		hs.start(1, false)
		hs.rt[1].SetPeer(0, hs.takePeer(1))
		r0.SetPeer(1, hs.takePeer(0))
		in := c.readInfo(t)
		checkInfo(t, mode, c, in, key, 1, 0)
		c.expect(t, "early|") // the echo of the early bytes
		c.echo(t, "then this\n")
		c.Close()
		// New ones go straight through.
		c, in = dial(t, hs.own[0], keyFor(1, "later", 0), nil)
		checkInfo(t, mode, c, in, keyFor(1, "later", 0), 1, 0)
		c.echo(t, "x")
		c.Close()
		hs.stopAll()
		hs.h[0].checkBalanced(t)
		hs.h[1].checkBalanced(t)
	})
}

// sockets makes loopback TCP connections whose server sides the test
// hands to shard 1 itself, as shard 0 would.
type sockets struct {
	t  *testing.T
	ln net.Listener
}

// next returns a connected client and a descriptor of its server side
// (the test's to close).
func (s *sockets) next() (*client, int) {
	t := s.t
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.ln.Addr().String(), bound)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(bound))
	sc, err := s.ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	rc, err := sc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.Dup(int(s)) }); err != nil || derr != nil {
		t.Fatal(err, derr)
	}
	return &client{Conn: nc, r: bufio.NewReader(nc)}, fd
}

// sendRaw sends one datagram with the descriptors fds on the raw end of
// a hand-off link.
func sendRaw(t *testing.T, link *os.File, msg []byte, fds ...int) {
	t.Helper()
	rc, err := link.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	// The link's header: a hand-off (kind 1), numbered 0 (docs/MESH.md).
	msg = append([]byte{1, 0, 0, 0, 0}, msg...)
	var serr error
	if err := rc.Control(func(s uintptr) { serr = unix.Sendmsg(int(s), msg, oob, nil, 0) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
}

func handoffMsg(t *testing.T, m frame.Handoff) []byte {
	t.Helper()
	b, err := frame.AppendHandoff(nil, &m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadHandoffMessages: what a peer sends on a hand-off link is
// checked: a datagram without a socket, with two, a message that does
// not parse, a key or a direct shard that another shard owns. Each is
// refused and logged, its sockets closed (a client whose socket came
// with a well-formed but wrong message gets -ERR), and nothing else is
// disturbed: the link goes on, a good hand-off after them is served, a
// connection open all along still echoes. Here the test is shard 0.
func TestBadHandoffMessages(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, ForwardHandoff, nil)
	hs.start(1, true)
	peer := hs.takePeer(0) // shard 0's ends: the test speaks for shard 0
	defer peer.Close()
	socks := &sockets{t: t, ln: listenTCP(t)}
	defer socks.ln.Close()

	local, _ := dial(t, hs.own[1], keyFor(1, "bystander", 0), nil)
	local.echo(t, "before\n")

	logs := hs.logs
	// No socket.
	sendRaw(t, peer.Handoff, handoffMsg(t, frame.Handoff{Key: []byte(keyFor(1, "nofd", 0))}))
	logs.waitLog(t, 1, `msg="bad hand-off message"`, "0 descriptors")

	// Two sockets: both closed by shard 1.
	c1, fd1 := socks.next()
	c2, fd2 := socks.next()
	sendRaw(t, peer.Handoff, handoffMsg(t, frame.Handoff{Key: []byte(keyFor(1, "twofds", 0))}), fd1, fd2)
	unix.Close(fd1)
	unix.Close(fd2)
	logs.waitLog(t, 1, `msg="bad hand-off message"`, "2 descriptors")
	for _, c := range []*client{c1, c2} {
		if got := readRefusal(t, c); got != "" {
			t.Errorf("a socket of a datagram with two: got %q, want a close", got)
		}
	}

	// Well-formed, with a socket, but wrong: the client gets -ERR.
	for _, tc := range []struct {
		name string
		msg  []byte
		log  string
	}{
		{"garbage", []byte("not a hand-off message"), `msg="refused a hand-off"`},
		{"another shard's key", handoffMsg(t, frame.Handoff{Key: []byte(keyFor(0, "wrong", 0)), Early: []byte("x")}), "is not this shard's"},
		{"another shard, direct", handoffMsg(t, frame.Handoff{Direct: true, Shard: 0}), `msg="refused a hand-off"`},
		{"a shard out of range, direct", handoffMsg(t, frame.Handoff{Direct: true, Shard: 7}), `msg="refused a hand-off"`},
	} {
		before := logs.count(`msg="refused a hand-off"`)
		c, fd := socks.next()
		sendRaw(t, peer.Handoff, tc.msg, fd)
		unix.Close(fd)
		if got := readRefusal(t, c); got != "-ERR internal error\n" {
			t.Errorf("%s: the client got %q, want -ERR internal error", tc.name, got)
		}
		logs.waitLog(t, before+1, `msg="refused a hand-off"`)
		if logs.count(tc.log) == 0 {
			t.Errorf("%s: no log line with %s", tc.name, tc.log)
		}
	}

	// The link goes on: a good hand-off is served.
	key := keyFor(1, "good", 0)
	c, fd := socks.next()
	sendRaw(t, peer.Handoff, handoffMsg(t, frame.Handoff{Key: []byte(key), Early: []byte("early|")}), fd)
	unix.Close(fd)
	in := c.readInfo(t)
	want := info{"shard": "1", "via": "0", "fwd": "true", "relayed": "false", "key": key,
		"remote": c.LocalAddr().String(), "local": c.RemoteAddr().String()}
	for k, v := range want {
		if in[k] != v {
			t.Errorf("the good hand-off: %s=%q, want %q", k, in[k], v)
		}
	}
	c.expect(t, "early|")
	c.echo(t, "then this\n")
	c.Close()
	local.echo(t, "after\n")
	local.Close()
	hs.h[1].waitCounts(t, "two OnClose", func(o, c int) bool { return c == 2 })
	if o, _ := hs.h[1].counts(); o != 2 {
		t.Errorf("%d OnOpen, want 2 (the bystander and the good hand-off)", o)
	}
	hs.stop(1)
	hs.h[1].checkBalanced(t)
	if strings.Contains(logs.String(), "panic") {
		t.Error("a panic in the logs")
	}
}

// stackWith reports whether a goroutine's stack contains all of subs
// (gnet's worker pool included).
func stackWith(subs ...string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
next:
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, s := range subs {
			if !strings.Contains(g, s) {
				continue next
			}
		}
		return true
	}
	return false
}

// TestHandoffArrivingAtStop: a socket handed to a shard whose Stop is
// already queued on its busy loop is closed (the client sees EOF, RST or
// -ERR), not left open for ever.
func TestHandoffArrivingAtStop(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, ForwardHandoff, nil)
	hs.startBoth()
	r1 := hs.rt[1]
	busy, entered := make(chan struct{}), make(chan struct{})
	if err := r1.shard.Run(func() { close(entered); <-busy }); err != nil {
		t.Fatal(err)
	}
	<-entered
	r1.Stop() // queued behind the busy function: closeOffLoop, then gnet's shutdown
	c := dialRaw(t, hs.own[0], keyFor(1, "late", 0), []byte("x"))
	// The receiving goroutine queues the socket for the loop (adopt.go),
	// behind the busy function and the Stop.
	waitFor(t, "the adoption to be queued", func() bool { return len(r1.adoptions.slots) > 0 })
	close(busy)
	hs.waitServed(1)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c.r)
	if err != nil && !errIsClosed(err) {
		t.Errorf("the client reads %q, %v: its connection was left open", b, err)
	}
}

// fakeOwner is the test standing in for shard 1 on the hand-off link:
// it receives what shard 0 sends and serves the sockets itself.
type fakeOwner struct {
	t      *testing.T
	link   *handoff.Link
	bufs   *handoff.Buffers
	sndbuf int // SO_SNDBUF of the link's ends: what fills it
}

func newFakeOwner(t *testing.T, hs *harness) *fakeOwner {
	t.Helper()
	peer := hs.takePeer(1)
	t.Cleanup(func() { peer.Mesh.Close() }) // never spoken to
	rc, err := peer.Handoff.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	sndbuf := 0
	_ = rc.Control(func(fd uintptr) { sndbuf, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF) })
	if err != nil {
		t.Fatal(err)
	}
	l, err := handoff.NewLink(peer.Handoff)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &fakeOwner{t: t, link: l, bufs: handoff.NewBuffers(), sndbuf: sndbuf}
}

// receive reads one hand-off: the message and the socket, as a net.Conn.
func (o *fakeOwner) receive() (*frame.Handoff, net.Conn) {
	t := o.t
	t.Helper()
	b, fd, seq, err := o.link.Receive(o.bufs)
	if err != nil {
		t.Fatalf("receive a hand-off: %v", err)
	}
	_ = o.link.Ack(seq) // the owner has it
	m, err := frame.ParseHandoff(b, frame.MaxKeyLimit)
	if err != nil {
		unix.Close(fd)
		t.Fatalf("parse a hand-off: %v", err)
	}
	m.Key, m.Early = append([]byte(nil), m.Key...), append([]byte(nil), m.Early...)
	f := os.NewFile(uintptr(fd), "handed-off")
	defer f.Close()
	nc, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return m, nc
}

// TestHandoffMessage: what shard 0 sends its peer with a socket: the
// key, the listener index, the bytes read past the preamble; the socket
// is the client's, still open, with nothing read from it that is not in
// the message.
func TestHandoffMessage(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, ForwardHandoff, nil)
	owner := newFakeOwner(t, hs)
	hs.start(0, true)
	for li, addr := range []string{hs.shared, hs.own[0]} {
		key := keyFor(1, "msg", li)
		c := dialRaw(t, addr, key, []byte("early"))
		m, nc := owner.receive()
		if string(m.Key) != key || m.Direct || int(m.Listener) != li || string(m.Early) != "early" {
			t.Errorf("hand-off %+v, want key %q, listener %d, early %q", m, key, li, "early")
		}
		if nc.RemoteAddr().String() != c.LocalAddr().String() {
			t.Errorf("the socket handed off is connected to %s, want the client %s", nc.RemoteAddr(), c.LocalAddr())
		}
		if _, err := io.WriteString(c, "late"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		_ = nc.SetDeadline(time.Now().Add(bound))
		if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "late" {
			t.Fatalf("read on the handed-off socket: %q, %v", buf, err)
		}
		if _, err := io.WriteString(nc, "from the owner\n"); err != nil {
			t.Fatal(err)
		}
		nc.Close()
		if got := readRefusal(t, c); got != "from the owner\n" {
			t.Errorf("the client got %q", got)
		}
	}
	hs.stop(0)
	hs.h[0].checkBalanced(t)
}

// TestHandoffOwnerFull: when the owner does not take the sockets as fast
// as they come, its link fills; a hand-off then waits for room, up to
// OwnerWait: served once the owner reads, or "-ERR server busy"
// when OwnerWait passes first. Never a silent close, never a socket lost.
func TestHandoffOwnerFull(t *testing.T) {
	t.Parallel()
	early := bytes.Repeat([]byte("e"), 60<<10) // a few fill the link
	for _, tc := range []struct {
		name string
		wait time.Duration
	}{{"served once there is room", bound}, {"OwnerWait passes", 20 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, ForwardHandoff, func(c *Config) { c.OwnerWait = tc.wait })
			owner := newFakeOwner(t, hs)
			hs.start(0, true)
			// Connections until shard 0 meets a full link (a hand-off
			// waits for room, or has given up already): about
			// SO_SNDBUF's worth, a few more while shard 0 catches up.
			full := func() bool {
				return stackWith("server.(*routed).handOffLater") || hs.logs.count("cannot hand off a connection") > 0
			}
			clients := map[string]*client{}
			for i := 0; !full(); i++ {
				if i == 4*owner.sndbuf/len(early)+16 {
					waitFor(t, "a hand-off to wait for room", full)
					break
				}
				key := keyFor(1, "full", i)
				clients[key] = dialRaw(t, hs.own[0], key, early)
			}
			n := len(clients)
			if tc.wait < bound {
				hs.logs.waitLog(t, 1, "cannot hand off a connection")
			}
			// Serve what comes, until every client has its answer.
			results := make(chan string, n)
			for key, c := range clients {
				go func() {
					b, err := io.ReadAll(c.r)
					results <- fmt.Sprintf("%s: %q %v", key, b, err)
				}()
			}
			served, refused := 0, 0
			received := make(chan *frame.Handoff, n)
			go func() {
				for {
					b, fd, seq, err := owner.link.Receive(owner.bufs)
					if err != nil {
						return
					}
					_ = owner.link.Ack(seq)
					m, err := frame.ParseHandoff(b, frame.MaxKeyLimit)
					// gnet may have read only part of the early bytes
					// when shard 0 dispatched: the rest is on the socket.
					if err != nil || !bytes.HasPrefix(early, m.Early) {
						unix.Close(fd)
						received <- nil
						continue
					}
					f := os.NewFile(uintptr(fd), "handed-off")
					nc, err := net.FileConn(f)
					f.Close()
					if err != nil {
						received <- nil
						continue
					}
					_ = nc.SetDeadline(time.Now().Add(bound))
					rest := make([]byte, len(early)-len(m.Early))
					if _, err := io.ReadFull(nc, rest); err == nil && bytes.Equal(rest, early[len(m.Early):]) {
						_, _ = io.WriteString(nc, "served "+string(m.Key)+"\n")
					}
					nc.Close()
				}
			}()
			for range n {
				var r string
				select {
				case r = <-results:
				case <-received:
					t.Fatal("a bad hand-off message")
				case <-time.After(bound):
					t.Fatalf("served %d, refused %d of %d: the others never got an answer", served, refused, n)
				}
				key, rest, _ := strings.Cut(r, ": ")
				switch rest {
				case fmt.Sprintf("%q <nil>", "served "+key+"\n"):
					served++
				case fmt.Sprintf("%q <nil>", "-ERR server busy\n"):
					refused++ // the owner is up and does not keep up
				default:
					t.Errorf("%s", r)
				}
			}
			t.Logf("served %d, refused %d", served, refused)
			if tc.wait == bound && served != n {
				t.Errorf("served %d of %d, refused %d: with OwnerWait long enough, all should be", served, n, refused)
			}
			if tc.wait < bound && (refused == 0 || served == 0) {
				t.Errorf("served %d, refused %d: want both (the link holds a few)", served, refused)
			}
			hs.stop(0)
			hs.h[0].checkBalanced(t)
		})
	}
}

// listeningOn reports whether this process holds a listening socket
// bound to addr.
func listeningOn(t *testing.T, addr string) bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscanf(e.Name(), "%d", &fd); err != nil {
			continue
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v == 0 {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			continue
		}
		if in, ok := sa.(*unix.SockaddrInet4); ok {
			if (&net.TCPAddr{IP: in.Addr[:], Port: in.Port}).String() == addr {
				return true
			}
		}
	}
	return false
}

// TestHandoffOfNotAClient: a peer that hands over, with a well-formed
// message for this shard's key, a descriptor that is not a connected
// stream socket (a pipe, a listening socket) gets it refused and logged:
// no OnOpen, the descriptor closed, the shard undisturbed.
func TestHandoffOfNotAClient(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, ForwardHandoff, nil)
	hs.start(1, true)
	peer := hs.takePeer(0)
	defer peer.Close()
	msg := handoffMsg(t, frame.Handoff{Key: []byte(keyFor(1, "notaclient", 0))})

	t.Run("pipe", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rc, _ := w.SyscallConn()
		_ = rc.Control(func(fd uintptr) { sendRaw(t, peer.Handoff, msg, int(fd)) })
		w.Close()
		_ = r.SetReadDeadline(time.Now().Add(bound))
		b, err := io.ReadAll(r) // EOF once shard 1 has closed its copy
		if err != nil {
			t.Errorf("the pipe: %q, %v; want it closed", b, err)
		}
		hs.logs.waitLog(t, 1, "cannot adopt a handed-off connection")
	})
	t.Run("listening socket", func(t *testing.T) {
		ln := listenTCP(t)
		addr := ln.Addr().String()
		fd := dupListener(t, ln)
		sendRaw(t, peer.Handoff, msg, fd)
		unix.Close(fd)
		ln.Close()
		waitFor(t, "every copy of the listening socket to be closed", func() bool { return !listeningOn(t, addr) })
	})
	local, _ := dial(t, hs.own[1], keyFor(1, "bystander", 0), nil)
	local.echo(t, "still served\n")
	local.Close()
	hs.h[1].waitCounts(t, "the bystander's OnClose", func(o, c int) bool { return c == 1 })
	if o, _ := hs.h[1].counts(); o != 1 {
		t.Errorf("%d OnOpen, want 1 (the bystander)", o)
	}
	hs.stop(1)
	hs.h[1].checkBalanced(t)
}
