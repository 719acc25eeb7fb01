package server

import (
	"context"
	"strings"
	"testing"
)

// TestNoLeaksAfterManyTLSHandoffs: TLS 1.3 connections worker 0
// terminates for keys of worker 1, handed off with their sessions, are
// all served by worker 1 (echo, the handler's summary), counted as hand-
// offs, and leave no descriptor and no goroutine behind once closed: the
// sender's duplicates go at the acknowledgements, the handshakes'
// goroutines end.
func TestNoLeaksAfterManyTLSHandoffs(t *testing.T) {
	const conns = 100
	hs := newHarness(t, ForwardHandoff, nil)
	hs.enableTLS()
	hs.cfg.ForwardTLS = ForwardTLSHandoff
	hs.startBoth()
	run := func(n int, tag string) {
		for i := 0; i < n; i++ {
			key := keyFor(1, tag, i)
			c := hs.dialTLS(t, hs.ownTLS[0], key, []byte("early|"))
			if in := c.readInfo(t); in["shard"] != "1" || in["via"] != "0" || in["relayed"] != "false" || in["fwd"] != "true" {
				t.Fatalf("connection %d: info %v, want shard 1 via 0, handed off", i, in)
			}
			c.expect(t, "early|")
			c.echo(t, "after the hand-off\n")
			c.Close()
		}
	}
	run(10, "warm") // gnet's buffers, the links
	hs.h[1].waitCounts(t, "the warm-up's OnClose", func(o, c int) bool { return o == 10 && c == 10 })
	fdsRunning := countFDs(t)
	gRunning := goroutines()

	run(conns, "tls-handoff")
	hs.h[1].waitCounts(t, "every OnClose", func(o, c int) bool { return o == 10+conns && c == o })
	if n := waitFDs(t, fdsRunning); n > fdsRunning {
		t.Errorf("after %d TLS sessions handed off: %d descriptors open, %d before them", conns, n, fdsRunning)
	}
	if extra := newGoroutines(gRunning, settle); len(extra) > 0 {
		t.Errorf("after %d TLS sessions handed off: %d goroutines more than before them:\n%s", conns, len(extra), strings.Join(extra, "\n\n"))
	}
	if o, _ := hs.h[0].counts(); o != 0 {
		t.Errorf("shard 0 opened %d connections, want none (all were handed off)", o)
	}
	if s := hs.rt[0].stats(context.Background()); s.Forwarded["handoff"] != 10+conns || s.Forwarded["relay"] != 0 {
		t.Errorf("shard 0 forwarded %v, want %d hand-offs and no relay", s.Forwarded, 10+conns)
	}
	hs.stopAll()
	hs.h[0].checkBalanced(t)
	hs.h[1].checkBalanced(t)
}
