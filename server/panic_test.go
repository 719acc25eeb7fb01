package server

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// panicking sets both shards' handlers to panic, in the method a key
// names: a key that contains "panic-OnOpen" panics in OnOpen (after its
// Hijack for an "hj-" key), "panic-OnData" in OnData, "panic-OnEOF" in
// OnEOF, "panic-OnClose" in OnClose. Other keys are served as by default.
func panicking(hs *harness) {
	for i := range 2 {
		h := hs.h[i]
		boom := func(c *Conn, method string) {
			if strings.Contains(string(c.Key()), "panic-"+method) {
				panic(fmt.Sprintf("test panic in %s of %s", method, c.Key()))
			}
		}
		h.open = func(c *Conn) {
			if strings.HasPrefix(string(c.Key()), "hj-") {
				defaultOpen(c) // hijacks, then panics
				boom(c, "OnOpen")
				return
			}
			boom(c, "OnOpen")
			defaultOpen(c)
		}
		h.data = func(c *Conn) {
			boom(c, "OnData")
			b, _ := c.Next(-1)
			_, _ = c.Write(b)
		}
		h.eof = func(c *Conn) {
			boom(c, "OnEOF")
			_ = c.Close()
		}
		h.close = func(c *Conn, _ error) { boom(c, "OnClose") }
	}
}

// panicCase is one connection whose handler panics.
type panicCase struct {
	method     string
	owner, via int
	hijack     bool
	tls        bool
}

func (pc panicCase) String() string {
	return fmt.Sprintf("%s, owner %d, accepted by %d, hijack=%t, tls=%t", pc.method, pc.owner, pc.via, pc.hijack, pc.tls)
}

// TestHandlerPanic: a panic in OnOpen, OnData, OnEOF or OnClose, for a
// local, handed-off or relayed connection (plain, hijacked in OnOpen, or
// TLS), closes that connection only: its client sees it closed, its
// OnClose comes once (with ErrHandlerPanic, unless the panic was in
// OnClose), the panic is logged with its method, key, remote address and
// stack, and counted; every other connection keeps echoing, new ones are
// served, a drain still finishes by itself (nothing is left held) and
// every OnOpen has had its OnClose. A panic in a function of Shard.Run or
// Shard.AfterFunc is logged and counted, and the loop goes on.
func TestHandlerPanic(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, nil)
		hs.enableTLS()
		panicking(hs)
		hs.startBoth()
		bystanders := openEveryKind(t, hs, "bystander", 1)
		bystanders = append(bystanders, openTLS(t, hs, "bystander-tls")...)

		var cases []panicCase
		for _, method := range []string{"OnOpen", "OnData", "OnEOF", "OnClose"} {
			for owner := range 2 {
				for via := range 2 {
					cases = append(cases, panicCase{method: method, owner: owner, via: via})
					if method == "OnOpen" {
						cases = append(cases, panicCase{method: method, owner: owner, via: via, hijack: true})
					}
					if method == "OnData" || method == "OnEOF" {
						cases = append(cases, panicCase{method: method, owner: owner, via: via, tls: true})
					}
				}
			}
		}
		var panics [2]uint64
		for n, pc := range cases {
			key := keyFor(pc.owner, "panic-"+pc.method, n)
			if pc.hijack {
				key = keyFor(pc.owner, "hj-panic-"+pc.method, n)
			}
			var c *client
			if pc.tls {
				c = hs.dialTLS(t, hs.ownTLS[pc.via], key, nil)
			} else {
				c = dialRaw(t, hs.own[pc.via], key, nil)
			}
			switch pc.method {
			case "OnData":
				c.readInfo(t)
				if _, err := io.WriteString(c, "boom\n"); err != nil {
					t.Fatal(err)
				}
			case "OnEOF":
				c.readInfo(t)
				c.echo(t, "before EOF\n")
				if err := c.Conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
					t.Fatal(err)
				}
			case "OnClose":
				c.readInfo(t)
				c.echo(t, "before close\n")
				c.Close()
			}
			if pc.method != "OnClose" {
				// The client sees its connection closed, with nothing
				// more than what was sent before the panic.
				b, err := io.ReadAll(c.r)
				if err != nil && !errIsClosed(err) {
					t.Fatalf("%s: the client reads %q, %v; want its connection closed", pc, b, err)
				}
				if len(b) > 0 && !pc.hijack {
					t.Errorf("%s: the client reads %q after the panic", pc, b)
				}
				c.Close()
			}
			h := hs.h[pc.owner]
			waitFor(t, "OnClose of "+pc.String(), func() bool {
				_, ok := h.errOf(key)
				return ok
			})
			if err, _ := h.errOf(key); pc.method != "OnClose" {
				if !errors.Is(err, ErrHandlerPanic) || !strings.Contains(err.Error(), pc.method) || !strings.Contains(err.Error(), "test panic") {
					t.Errorf("%s: OnClose(%v), want ErrHandlerPanic naming the method and the panic", pc, err)
				}
			}
			panics[pc.owner]++
			rt := hs.rt[pc.owner]
			waitFor(t, "the panic counted", func() bool { return rt.panics.Load() >= panics[pc.owner] })
			hs.logs.waitLog(t, 1, "handler panicked", "method="+pc.method, key, "remote="+c.LocalAddr().String(),
				"stack=", "panic_test.go", "test panic in "+pc.method)
		}
		for i := range 2 {
			if got := hs.rt[i].panics.Load(); got != panics[i] {
				t.Errorf("shard %d counted %d panics, want %d", i, got, panics[i])
			}
		}

		// Functions run on the loop.
		hs.rt[0].shard.AfterFunc(time.Millisecond, func() { panic("test panic in AfterFunc") })
		if err := hs.rt[1].shard.Run(func() { panic("test panic in Run") }); err != nil {
			t.Fatal(err)
		}
		hs.logs.waitLog(t, 1, "a function run on the loop panicked", "test panic in AfterFunc", "panic_test.go")
		hs.logs.waitLog(t, 1, "a function run on the loop panicked", "test panic in Run", "panic_test.go")
		for i := range 2 {
			ran := make(chan struct{})
			if err := hs.rt[i].shard.Run(func() { close(ran) }); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ran:
			case <-time.After(bound):
				t.Fatalf("shard %d: Run after a panic did not run", i)
			}
			if got := hs.rt[i].panics.Load(); got != panics[i]+1 {
				t.Errorf("shard %d counted %d panics, want %d", i, got, panics[i]+1)
			}
		}

		// The shards serve on: old connections and new ones.
		for _, o := range bystanders {
			o.c.echo(t, "after the panics\n")
		}
		for _, o := range openEveryKind(t, hs, "after", 1) {
			o.c.Close()
		}

		// Nothing is left held: a drain finishes once the bystanders close.
		hs.rt[0].Drain(time.Now().Add(time.Hour))
		hs.rt[1].Drain(time.Now().Add(time.Hour))
		for _, o := range bystanders {
			o.c.Close()
		}
		hs.waitServed(0)
		hs.waitServed(1)
		hs.h[0].checkBalanced(t)
		hs.h[1].checkBalanced(t)
	})
}

// TestFactoryPanic: a HandlerFactory that panics is a startup failure,
// an error from Serve (logged with its stack), not a panic recovered and
// forgotten: the shard never becomes ready.
func TestFactoryPanic(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, ForwardHandoff, nil)
	hs.factory = func(*Shard) (Handler, error) { panic("test panic in the factory") }
	_, err := hs.tryStart(0, false)
	if err == nil || !strings.Contains(err.Error(), "test panic in the factory") {
		t.Fatalf("Serve: %v, want an error naming the factory's panic", err)
	}
	hs.logs.waitLog(t, 1, "handler factory panicked", "test panic in the factory", "panic_test.go")
}
