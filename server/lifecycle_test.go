package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// openConn is a connection a lifecycle test keeps open.
type openConn struct {
	c          *client
	key        string
	owner, via int
	hijacked   bool
	relayed    bool // its bytes go through the accepting shard
}

func (o openConn) String() string {
	more := ""
	if o.hijacked {
		more += ", hijacked"
	}
	if o.relayed {
		more += ", relayed"
	}
	return fmt.Sprintf("key %q (owner %d, accepted by %d%s)", o.key, o.owner, o.via, more)
}

// openEveryKind opens, for every owner and accepting shard, a plain and
// a hijacked connection, n of each, and checks each echoes.
func openEveryKind(t *testing.T, hs *harness, tag string, n int) []openConn {
	t.Helper()
	var conns []openConn
	for i := range n {
		for owner := range 2 {
			for via := range 2 {
				for _, hj := range []bool{false, true} {
					prefix := ""
					if hj {
						prefix = "hj-"
					}
					key := keyFor(owner, prefix+tag, i*4+via)
					c, in := dial(t, hs.own[via], key, nil)
					if in["shard"] != fmt.Sprint(owner) || in["via"] != fmt.Sprint(via) {
						t.Fatalf("key %q: info %v", key, in)
					}
					c.echo(t, "ping\n")
					relayed := owner != via && hs.mode == ForwardRelay
					conns = append(conns, openConn{c, key, owner, via, hj, relayed})
				}
			}
		}
	}
	return conns
}

// closeSome closes every other connection from the client's side (half
// of them with an RST), waits until their owners have had OnClose, and
// returns the others.
func closeSome(t *testing.T, hs *harness, conns []openConn) []openConn {
	t.Helper()
	var keep []openConn
	for i, o := range conns {
		if i%2 == 1 {
			keep = append(keep, o)
			continue
		}
		if i%4 == 0 {
			o.c.resetClose()
		} else {
			o.c.Close()
		}
	}
	for i, o := range conns {
		if i%2 == 1 {
			continue
		}
		h := hs.h[o.owner]
		waitFor(t, "OnClose of "+o.String(), func() bool {
			_, ok := h.errOf(o.key)
			return ok
		})
	}
	return keep
}

// checkClosedByServer checks that the client of each connection sees it
// closed (EOF or RST; never left hanging), and that OnClose got
// ErrServerClosed for those of the owners in stopped.
func checkClosedByServer(t *testing.T, hs *harness, conns []openConn, stopped ...int) {
	t.Helper()
	for _, o := range conns {
		_ = o.c.SetReadDeadline(time.Now().Add(bound))
		b, err := io.ReadAll(o.c.r)
		if err != nil && !errIsClosed(err) {
			t.Errorf("%s: the client reads %q, %v; want its connection closed", o, b, err)
		}
		err, ok := hs.h[o.owner].errOf(o.key)
		if !ok {
			t.Errorf("%s: no OnClose", o)
			continue
		}
		for _, s := range stopped {
			if s == o.owner && !errors.Is(err, ErrServerClosed) {
				t.Errorf("%s: OnClose(%v), want ErrServerClosed", o, err)
			}
		}
	}
}

// TestOpenCloseBalanceAtStop: at Stop, every connection still open gets
// its OnClose, with ErrServerClosed, exactly once, whatever its kind:
// local, handed-off or relayed, hijacked (whose OnClose otherwise comes
// when the hijacker closes the net.Conn, with a nil error), and
// half-closed ones the handler keeps open after OnEOF, and TLS ones
// (plain or hijacked). The clients see their connections closed.
func TestOpenCloseBalanceAtStop(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, nil)
		hs.enableTLS()
		hs.startBoth()
		conns := openEveryKind(t, hs, "stop", 2)
		open := closeSome(t, hs, conns)
		open = append(open, halfClosed(t, hs)...)
		open = append(open, openTLS(t, hs, "stop-tls")...)
		for _, o := range conns {
			if o.hijacked && !contains(open, o) {
				if err, _ := hs.h[o.owner].errOf(o.key); err != nil {
					t.Errorf("%s: closed by its hijacker: OnClose(%v), want nil", o, err)
				}
			}
		}
		// Stop the owner of half the open connections first: those it
		// accepted and handed off to shard 0 still run.
		hs.stop(1)
		hs.h[1].checkBalanced(t)
		var of0 []openConn
		for _, o := range open {
			if o.owner == 0 && !o.relayed && !strings.HasPrefix(o.key, "keep-") {
				of0 = append(of0, o)
			}
		}
		for _, o := range of0 {
			o.c.echo(t, "shard 1 stopped\n")
		}
		hs.stop(0)
		hs.h[0].checkBalanced(t)
		for _, o := range open {
			stoppedOwner := []int{o.owner}
			if o.owner == 0 && o.relayed {
				stoppedOwner = nil // its relay ended with shard 1: any reason
			}
			checkClosedByServer(t, hs, []openConn{o}, stoppedOwner...)
		}
	})
}

// halfClosed opens a connection of every owner and accepting shard
// whose client then shuts down its write side; its handler keeps it open
// after OnEOF (a local one is then taken off gnet, see keepAfterEOF).
func halfClosed(t *testing.T, hs *harness) []openConn {
	t.Helper()
	var conns []openConn
	eofs := [2]int{}
	for owner := range 2 {
		for via := range 2 {
			key := keyFor(owner, "keep-half", via)
			c, _ := dial(t, hs.own[via], key, nil)
			c.echo(t, "before EOF\n")
			if err := c.Conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, openConn{c, key, owner, via, false, owner != via && hs.mode == ForwardRelay})
			eofs[owner]++
		}
	}
	for owner := range 2 {
		h := hs.h[owner]
		waitFor(t, "OnEOF", func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.eofs >= eofs[owner]
		})
	}
	return conns
}

// openTLS opens a TLS connection, plain and hijacked, for every owner
// and accepting shard (relayed when another shard owns it, in either
// mode), and checks each echoes.
func openTLS(t *testing.T, hs *harness, tag string) []openConn {
	t.Helper()
	var conns []openConn
	for owner := range 2 {
		for via := range 2 {
			for _, prefix := range []string{"", "hj-"} {
				key := keyFor(owner, prefix+tag, via)
				c := hs.dialTLS(t, hs.ownTLS[via], key, nil)
				if in := c.readInfo(t); in["shard"] != fmt.Sprint(owner) || in["tls"] != "true" {
					t.Fatalf("key %q: info %v", key, in)
				}
				c.echo(t, "ping\n")
				conns = append(conns, openConn{c, key, owner, via, prefix != "", owner != via})
			}
		}
	}
	return conns
}

func contains(conns []openConn, o openConn) bool {
	for _, x := range conns {
		if x.key == o.key {
			return true
		}
	}
	return false
}

// TestOpenCloseBalanceAfterDrain: a drain whose deadline passes with
// connections open closes them all, each with one OnClose
// (ErrServerClosed), and Serve returns; a drain whose connections all
// close returns by itself, long before its deadline.
func TestOpenCloseBalanceAfterDrain(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		t.Run("deadline", func(t *testing.T) {
			hs := newHarness(t, mode, nil)
			hs.enableTLS()
			hs.startBoth()
			conns := openEveryKind(t, hs, "drain", 1)
			open := closeSome(t, hs, conns)
			open = append(open, halfClosed(t, hs)...)
			open = append(open, openTLS(t, hs, "drain-tls")...)
			hs.rt[1].Drain(time.Now().Add(50 * time.Millisecond))
			hs.waitServed(1)
			hs.h[1].checkBalanced(t)
			hs.stop(0)
			hs.h[0].checkBalanced(t)
			var of1 []openConn
			for _, o := range open {
				if o.owner == 1 {
					of1 = append(of1, o)
				}
			}
			checkClosedByServer(t, hs, of1, 1)
		})
		t.Run("finishes", func(t *testing.T) {
			hs := newHarness(t, mode, nil)
			hs.startBoth()
			conns := openEveryKind(t, hs, "drained", 1)
			hs.rt[1].Drain(time.Now().Add(time.Hour))
			hs.rt[0].Drain(time.Now().Add(time.Hour))
			for _, o := range conns {
				o.c.echo(t, "draining\n")
				o.c.Close()
			}
			hs.waitServed(1) // long before the hour: nothing left to wait for
			hs.waitServed(0)
			hs.h[0].checkBalanced(t)
			hs.h[1].checkBalanced(t)
		})
	})
}

// TestHijack: a hijacked connection's net.Conn reads the early bytes
// first, then the socket; the handler gets no call but OnClose, once,
// when the hijacker closes the net.Conn (nil error); a second Hijack is
// refused.
func TestHijack(t *testing.T) {
	t.Parallel()
	testHijack(t, false)
}

// TestHijackedConnLocalAddr: a hijacked Conn's LocalAddr, asked after
// OnOpen (here in OnClose), is still the address the client connected
// to, as RemoteAddr is.
func TestHijackedConnLocalAddr(t *testing.T) {
	t.Parallel()
	testHijack(t, true)
}

func testHijack(t *testing.T, checkLocal bool) {
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, nil)
		h := hs.h[1]
		type seen struct{ local, remote string }
		atClose := make(chan seen, 4)
		h.open = func(c *Conn) {
			// No Conn method before Hijack: LocalAddr is first asked
			// in OnClose.
			nc, err := c.Hijack()
			if err != nil {
				_, _ = c.Write([]byte("-ERR " + err.Error() + "\n"))
				_ = c.Close()
				return
			}
			if _, err := c.Hijack(); !errors.Is(err, ErrHijack) {
				h.mu.Lock()
				h.problem("a second Hijack: %v, want ErrHijack", err)
				h.mu.Unlock()
			}
			go func() {
				defer nc.Close()
				buf := make([]byte, 64)
				n, _ := io.ReadAtLeast(nc, buf, len("early+late"))
				_, _ = nc.Write(append([]byte("hijacked:"), buf[:n]...))
			}()
		}
		h.close = func(c *Conn, err error) {
			atClose <- seen{fmt.Sprint(c.LocalAddr()), fmt.Sprint(c.RemoteAddr())}
		}
		hs.startBoth()
		for _, k := range kindsOf(mode) {
			key := keyFor(1, "hj-"+k.name, 0)
			c := dialRaw(t, hs.own[k.via], key, []byte("early"))
			if _, err := io.WriteString(c, "+late"); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(c.r)
			if err != nil || string(b) != "hijacked:early+late" {
				t.Errorf("%s: %q, %v", k.name, b, err)
			}
			s := <-atClose
			if err, _ := h.errOf(key); err != nil {
				t.Errorf("%s: OnClose(%v), want nil", k.name, err)
			}
			if s.remote != c.LocalAddr().String() {
				t.Errorf("%s: RemoteAddr in OnClose %s, want %s", k.name, s.remote, c.LocalAddr())
			}
			if checkLocal && s.local != c.RemoteAddr().String() {
				t.Errorf("%s: LocalAddr in OnClose %s, want %s", k.name, s.local, c.RemoteAddr())
			}
			c.Close()
		}
		hs.stopAll()
		h.checkBalanced(t)
	})
}

// TestHijackOutsideOnOpen: Hijack is refused after OnOpen.
func TestHijackOutsideOnOpen(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, ForwardHandoff, nil)
	h := hs.h[1]
	h.data = func(c *Conn) {
		_, _ = c.Next(-1)
		_, err := c.Hijack()
		_, _ = c.Write([]byte(fmt.Sprintf("hijack in OnData: %v\n", err)))
	}
	hs.startBoth()
	for via := range 2 {
		c, _ := dial(t, hs.own[via], keyFor(1, "late-hj", via), []byte("x"))
		line, err := c.r.ReadString('\n')
		if err != nil || !strings.Contains(line, ErrHijack.Error()) {
			t.Errorf("accepted by %d: %q, %v; want ErrHijack", via, line, err)
		}
		c.Close()
	}
	hs.stopAll()
	h.checkBalanced(t)
}

var _ net.Conn = (*hijacked)(nil)
