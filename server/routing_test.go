package server

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/shard"
)

// checkInfo checks what the handler saw of a connection: served by
// owner, accepted by via, the flags that follow, the key, and the
// client's own addresses.
func checkInfo(t *testing.T, mode string, c *client, in info, key string, owner, via int) {
	t.Helper()
	fwd := via != owner
	want := info{
		"shard":   strconv.Itoa(owner),
		"via":     strconv.Itoa(via),
		"fwd":     strconv.FormatBool(fwd),
		"relayed": strconv.FormatBool(fwd && mode == ForwardRelay),
		"direct":  "false",
		"tls":     "false",
		"key":     key,
		"remote":  c.LocalAddr().String(),
		"local":   c.RemoteAddr().String(),
	}
	for k, v := range want {
		if in[k] != v {
			t.Errorf("key %q (owner %d, accepted by %d): %s=%q, want %q (info %v)", key, owner, via, k, in[k], v, in)
		}
	}
}

// TestKeysLandOnTheirOwner: every key is served by the shard shard.Owner
// names, whichever shard accepted it; the handler sees Forwarded,
// Relayed (handed-off connections are not relayed), AcceptedBy, Key,
// and the client's real addresses; the bytes sent with the preamble come
// first and in order. Both the local and the forwarded path are
// exercised: on the shared listener (whichever loop the kernel wakes)
// and, for certain, on each shard's own listener.
func TestKeysLandOnTheirOwner(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, nil)
		hs.startBoth()
		seen := map[[2]int]int{} // {owner, via} -> connections
		for i := range 80 {
			key := fmt.Sprintf("room-%d", i)
			early := fmt.Sprintf("early-%d|", i)
			c, in := dial(t, hs.shared, key, []byte(early))
			owner := shard.Owner([]byte(key), 2)
			via, err := strconv.Atoi(in["via"])
			if err != nil {
				t.Fatalf("info %v", in)
			}
			checkInfo(t, mode, c, in, key, owner, via)
			seen[[2]int{owner, via}]++
			buf := make([]byte, len(early))
			if _, err := io.ReadFull(c.r, buf); err != nil || string(buf) != early {
				t.Fatalf("key %q: early bytes came back as %q, %v; want %q", key, buf, err, early)
			}
			c.echo(t, "and then\n")
			c.Close()
		}
		t.Logf("shared listener: {owner, accepted by}: connections: %v", seen)
		for via := range 2 {
			for owner := range 2 {
				key := keyFor(owner, "own", via)
				c, in := dial(t, hs.own[via], key, nil)
				checkInfo(t, mode, c, in, key, owner, via)
				c.echo(t, "xyz")
				c.Close()
			}
		}
		hs.stopAll()
		hs.h[0].checkBalanced(t)
		hs.h[1].checkBalanced(t)
	})
}

// TestEarlyBytes: the bytes sent in the same write as the preamble reach
// the handler first and in order, then the rest of the stream: a few
// bytes (handed off with the socket, or relayed in the stream header),
// and 100 KiB, more than a hand-off message carries (MaxHandoffEarly),
// for a local and a forwarded connection.
func TestEarlyBytes(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, nil)
		hs.startBoth()
		big := make([]byte, 100<<10)
		rand.Read(big)
		for _, tc := range []struct {
			name  string
			early []byte
		}{
			{"small", []byte("hello, early bytes")},
			{"100KiB", big},
		} {
			for via := range 2 {
				key := keyFor(1, "early-"+tc.name, via)
				c := dialRaw(t, hs.own[via], key, tc.early)
				in := c.readInfo(t)
				if mode == ForwardHandoff && len(tc.early) > frame.MaxHandoffEarly && via == 0 {
					// dispatch relays a connection when more than
					// MaxHandoffEarly bytes are buffered past the
					// preamble, but gnet reads at most 64 KiB at a
					// time (its default read buffer), so at dispatch
					// time there never are: either way is right here.
					t.Logf("handoff: forwarded with %d early bytes: relayed=%s", len(tc.early), in["relayed"])
					in["relayed"] = "false"
				}
				checkInfo(t, mode, c, in, key, 1, via)
				got := make([]byte, len(tc.early))
				if _, err := io.ReadFull(c.r, got); err != nil {
					t.Fatalf("%s, accepted by %d: read the early bytes back: %v", tc.name, via, err)
				}
				if !bytes.Equal(got, tc.early) {
					t.Fatalf("%s, accepted by %d: the early bytes came back changed or out of order", tc.name, via)
				}
				c.echo(t, "after the early bytes\n")
				c.Close()
			}
		}
		hs.stopAll()
		hs.h[0].checkBalanced(t)
		hs.h[1].checkBalanced(t)
	})
}

// TestDirectRouting: a direct preamble (a shard index and the token that
// proves the secret) reaches that shard from either worker, handed off
// or relayed like a key; the handler sees Direct and no key. A wrong
// token or an index out of range is refused with -ERR.
func TestDirectRouting(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		hs := newHarness(t, mode, nil)
		hs.startBoth()
		for via := range 2 {
			for target := range 2 {
				p, err := frame.AppendDirect(nil, frame.Line, uint32(target), hs.cfg.Secret)
				if err != nil {
					t.Fatal(err)
				}
				c := dialBytes(t, hs.own[via], append(p, "early|"...))
				in := c.readInfo(t)
				fwd := via != target
				want := info{
					"shard": strconv.Itoa(target), "via": strconv.Itoa(via), "direct": "true", "key": "",
					"fwd": strconv.FormatBool(fwd), "relayed": strconv.FormatBool(fwd && mode == ForwardRelay),
					"remote": c.LocalAddr().String(), "local": c.RemoteAddr().String(),
				}
				for k, v := range want {
					if in[k] != v {
						t.Errorf("direct to %d accepted by %d: %s=%q, want %q", target, via, k, in[k], v)
					}
				}
				c.expect(t, "early|")
				c.Close()
			}
			for _, tc := range []struct {
				secret string
				shard  uint32
				want   string
			}{
				{"not the secret", 1, "-ERR direct preamble refused: wrong secret\n"},
				{string(hs.cfg.Secret), 2, "-ERR direct preamble refused: shard index out of range: 2, the server has 2 shards\n"},
			} {
				p, _ := frame.AppendDirect(nil, frame.Line, tc.shard, []byte(tc.secret))
				c := dialBytes(t, hs.own[via], p)
				b, err := io.ReadAll(c.r)
				if string(b) != tc.want {
					t.Errorf("accepted by %d: got %q, %v; want %q", via, b, err, tc.want)
				}
				c.Close()
			}
		}
		hs.stopAll()
		hs.h[0].checkBalanced(t)
		hs.h[1].checkBalanced(t)
	})
}

// TestTLSConnections: a TLS connection is served by its key's owner like
// any other; when another shard owns it, it is relayed (its TLS state
// lives in the accepting worker: ForwardTLS splice, and relay mode), or
// handed off with its TLS 1.3 session (ForwardTLS handoff); the handler
// sees its TLS summary, the client's real addresses and the bytes sent
// with the key.
func TestTLSConnections(t *testing.T) {
	t.Parallel()
	forModes(t, func(t *testing.T, mode string) {
		for _, ft := range []string{ForwardTLSSplice, ForwardTLSHandoff} {
			if mode == ForwardRelay && ft == ForwardTLSHandoff {
				continue // no hand-off links: always relayed
			}
			t.Run(ft, func(t *testing.T) { testTLSConnections(t, mode, ft) })
		}
	})
}

func testTLSConnections(t *testing.T, mode, forwardTLS string) {
	hs := newHarness(t, mode, nil)
	hs.enableTLS()
	hs.cfg.ForwardTLS = forwardTLS
	hs.startBoth()
	for via := range 2 {
		for owner := range 2 {
			key := keyFor(owner, "tls", via)
			c := hs.dialTLS(t, hs.ownTLS[via], key, []byte("early|"))
			in := c.readInfo(t)
			fwd := via != owner
			relayed := fwd && forwardTLS != ForwardTLSHandoff
			want := info{
				"shard": strconv.Itoa(owner), "via": strconv.Itoa(via), "key": key, "tls": "true",
				"fwd": strconv.FormatBool(fwd), "relayed": strconv.FormatBool(relayed),
				"remote": c.LocalAddr().String(), "local": c.RemoteAddr().String(),
			}
			for k, v := range want {
				if in[k] != v {
					t.Errorf("TLS, key %q (owner %d, accepted by %d): %s=%q, want %q", key, owner, via, k, in[k], v)
				}
			}
			c.expect(t, "early|")
			c.echo(t, "over TLS\n")
			c.Close()
		}
	}
	hs.h[0].waitCounts(t, "every OnClose", func(o, c int) bool { return o == c })
	hs.h[1].waitCounts(t, "every OnClose", func(o, c int) bool { return o == c })
	hs.stopAll()
	hs.h[0].checkBalanced(t)
	hs.h[1].checkBalanced(t)
}
