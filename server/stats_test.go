package server

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/subordinate/subordinate/frame"
)

// TestStatsCounts: after known traffic on an in-process 2-shard server,
// each shard's figures are exactly what that traffic makes: connections
// accepted, opened by how they came, forwarded by how they left, refused
// by reason, TLS handshakes by result, and the bytes each handler read
// and wrote (a hijacked connection's included, once it closed).
func TestStatsCounts(t *testing.T) {
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, nil)
		hs.enableTLS()
		hs.startBoth()
		var in, out [2]uint64 // by owner, what the clients sent and read past the key
		talk := func(c *client, owner int) {
			t.Helper()
			line, err := c.r.ReadString('\n')
			if err != nil || strings.HasPrefix(line, "-ERR") {
				t.Fatalf("info line: %q, %v", line, err)
			}
			c.echo(t, "ping\n")
			in[owner] += 5
			out[owner] += uint64(len(line)) + 5
			_ = c.Close()
		}
		for n := range 3 { // local on shard 0
			talk(dialRaw(t, hs.own[0], keyFor(0, "local", n), nil), 0)
		}
		for n := range 2 { // accepted by 0, owned by 1: handed off or relayed
			talk(dialRaw(t, hs.own[0], keyFor(1, "fwd", n), nil), 1)
		}
		talk(dialRaw(t, hs.own[1], keyFor(1, "hj", 0), nil), 1)        // hijacked on shard 1
		talk(hs.dialTLS(t, hs.ownTLS[0], keyFor(1, "tls", 0), nil), 1) // TLS 1.3, from 0 to 1: handed off with its session, or relayed

		refused := func(addr string, msg []byte) {
			c := dialBytes(t, addr, msg)
			_, _ = io.ReadAll(c.r) // an -ERR line, or nothing, then the end
			_ = c.Close()
		}
		refused(hs.own[0], []byte("!x\n"))                               // bad preamble on 0
		refused(hs.own[1], []byte(strings.Repeat("k", DefaultMaxKey+1))) // key too long on 1
		refused(hs.ownTLS[1], []byte("plaintext\n"))                     // not TLS, on 1

		var got [2]workerStats
		waitFor(t, "every connection closed", func() bool {
			for i := range 2 {
				got[i] = hs.rt[i].stats(context.Background())
				if !got[i].Loop || got[i].Active != 0 || got[i].Sockets != 0 {
					return false
				}
			}
			return true
		})
		fwdHow := howNames[howHandoff]
		if mode == ForwardRelay {
			fwdHow = howNames[howRelay]
		}
		want := [2]workerStats{{
			Accepted:  3 + 2 + 1 + 1,
			Opened:    map[string]uint64{"local": 3, "handoff": 0, "relay": 0},
			Forwarded: map[string]uint64{"handoff": 0, "relay": 0},
			Refused:   map[string]uint64{"bad_preamble": 1},
			TLS:       map[string]uint64{"ok": 1},
		}, {
			Accepted:  1 + 1 + 1,
			Opened:    map[string]uint64{"local": 1, "handoff": 0, "relay": 0},
			Forwarded: map[string]uint64{"handoff": 0, "relay": 0},
			Refused:   map[string]uint64{"key_too_long": 1, "tls_handshake": 1},
			TLS:       map[string]uint64{"not_tls": 1},
		}}
		want[0].Forwarded[fwdHow] += 2 + 1 // and the TLS one
		want[1].Opened[fwdHow] += 2 + 1
		for i := range 2 {
			g, w := got[i], want[i]
			if g.Accepted != w.Accepted {
				t.Errorf("shard %d: accepted %d, want %d", i, g.Accepted, w.Accepted)
			}
			checkCounts(t, i, "opened", g.Opened, w.Opened)
			checkCounts(t, i, "forwarded", g.Forwarded, w.Forwarded)
			checkCounts(t, i, "refused", g.Refused, w.Refused)
			checkCounts(t, i, "tls", g.TLS, w.TLS)
			if g.BytesIn != in[i] || g.BytesOut != out[i] {
				t.Errorf("shard %d: bytes in %d out %d, want %d and %d", i, g.BytesIn, g.BytesOut, in[i], out[i])
			}
			if len(g.Mesh) != 1 || !g.Mesh[0].Up || g.Mesh[0].Peer != 1-i {
				t.Errorf("shard %d: mesh %+v, want one link up to %d", i, g.Mesh, 1-i)
			}
			if g.MaxConns != hs.rt[i].maxConns || g.Draining {
				t.Errorf("shard %d: max conns %d draining %v", i, g.MaxConns, g.Draining)
			}
		}
	})
}

// checkCounts compares counts by label: a label absent from want must
// count 0.
func checkCounts(t *testing.T, shard int, what string, got, want map[string]uint64) {
	t.Helper()
	for k, n := range got {
		if n != want[k] {
			t.Errorf("shard %d: %s[%s] = %d, want %d", shard, what, k, n, want[k])
		}
	}
	for k, n := range want {
		if _, ok := got[k]; !ok && n != 0 {
			t.Errorf("shard %d: %s[%s] missing, want %d", shard, what, k, n)
		}
	}
}

// TestStatsLoopStopped: a shard whose loop has stopped still answers,
// without the loop's figures.
func TestStatsLoopStopped(t *testing.T) {
	hs := newHarness(t, ForwardHandoff, nil)
	r := hs.start(0, false)
	hs.stop(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s := r.stats(ctx)
	if s.Loop || s.Opened != nil || s.Forwarded != nil || s.Refused == nil || s.TLS == nil {
		t.Fatalf("stats of a stopped shard: %+v", s)
	}
}

// TestRefusalKinds: every reason the runtime refuses a connection with
// has a kind of its own, not "other".
func TestRefusalKinds(t *testing.T) {
	for reason, want := range map[string]int{
		"preamble timeout":                    refPreambleTimeout,
		frame.Reason(frame.ErrKeyTooLong):     refKeyTooLong,
		frame.Reason(frame.ErrEmptyKey):       refBadPreamble,
		frame.Reason(frame.ErrReservedKey):    refBadPreamble,
		frame.Reason(frame.ErrBadMagic):       refBadPreamble,
		frame.Reason(frame.ErrBadDirect):      refBadPreamble,
		frame.Reason(frame.ErrBadSecret):      refDirectRefused,
		frame.Reason(frame.ErrShardRange):     refDirectRefused,
		frame.Reason(frame.ErrDirectDisabled): refDirectRefused,
		"server busy":                         refBusy,
		"shard 3 unavailable":                 refOwnerUnavailable,
		"server is draining":                  refDraining,
		"connection closed before its key":    refClosedBeforeKey,
		"internal error":                      refInternal,
		"something new":                       refOther,
	} {
		if got := refusalKind(reason); got != want {
			t.Errorf("refusalKind(%q) = %s, want %s", reason, refusalNames[got], refusalNames[want])
		}
	}
}

// TestTLSResult: a handshake's failure is classified as handshakeReason
// names it.
func TestTLSResult(t *testing.T) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if got := tlsResult(io.EOF, done); got != tlsTimeout {
		t.Errorf("ended context: %s", tlsResultNames[got])
	}
	if got := tlsResult(tls.RecordHeaderError{Msg: "x"}, context.Background()); got != tlsNotTLS {
		t.Errorf("record header error: %s", tlsResultNames[got])
	}
	if got := tlsResult(&net.OpError{Op: "read", Err: io.ErrUnexpectedEOF}, context.Background()); got != tlsFailed {
		t.Errorf("other error: %s", tlsResultNames[got])
	}
}
