package main

// The proxy handler with the real binary: a TLS front whose shards relay
// to their own upstreams.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proxyproto"
	"github.com/subordinate/subordinate/shard"
)

// upstream is a test backend: it reads the PROXY header when told to,
// answers "upstream=<i> key=<key> src=<addr>", then echoes until EOF and
// closes.
type upstream struct {
	ln    net.Listener
	index int
	pp    bool
	wg    sync.WaitGroup
}

func startUpstream(t *testing.T, path string, index int, pp bool) *upstream {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{ln: ln, index: index, pp: pp}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				key, src := "-", "-"
				r := bufio.NewReader(c)
				if u.pp {
					h, err := proxyproto.Read(r)
					if err != nil {
						fmt.Fprintf(c, "bad PROXY header: %v\n", err)
						return
					}
					if k, ok := h.Find(proxyproto.TypeKey); ok {
						key = string(k)
					}
					if h.Source != nil {
						src = h.Source.String()
					}
				}
				fmt.Fprintf(c, "upstream=%d key=%s src=%s\n", u.index, key, src)
				io.Copy(c, r)
			}()
		}
	}()
	t.Cleanup(func() { u.close() })
	return u
}

func (u *upstream) close() {
	u.ln.Close()
	u.wg.Wait()
}

// TestProxyTLSFront: a TLS front over three shards, each relaying to its
// own upstream with a PROXY v2 header: every key reaches the upstream of
// the shard that owns it, with the client's address and the key; bytes
// and half-close pass through; a down upstream gets the client -ERR.
func TestProxyTLSFront(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	dir := t.TempDir()
	ups := make([]*upstream, 3)
	for i := range ups {
		ups[i] = startUpstream(t, filepath.Join(dir, fmt.Sprintf("%d.sock", i)), i, true)
	}
	s := tlsServe(t, p, "--handler", "proxy", "--upstream", "unix://"+dir+"/{shard}.sock", "--upstream-proxy-protocol")
	cfg := &tls.Config{RootCAs: p.pool, ServerName: "a.example"}
	for i := 0; i < 30; i++ {
		key := fmt.Sprintf("tenant-%d", i)
		c, r, line := tlsDial(t, s.addr, cfg, key)
		want := fmt.Sprintf("upstream=%d key=%s src=%s\n", shard.Owner([]byte(key), 3), key, c.LocalAddr())
		if line != want {
			t.Fatalf("key %s: upstream said %q, want %q", key, line, want)
		}
		msg := strings.Repeat(key, 3000)
		io.WriteString(c, msg)
		c.CloseWrite()
		back, err := io.ReadAll(r)
		if err != nil || string(back) != msg {
			t.Fatalf("key %s: %d of %d bytes back, %v", key, len(back), len(msg), err)
		}
		c.Close()
	}
	// Upstream 1 goes down: its keys get -ERR, the others still work.
	ups[1].close()
	for i := 0; i < 30; i++ {
		key := fmt.Sprintf("tenant-%d", i)
		c, _, line := tlsDial(t, s.addr, cfg, key)
		owner := shard.Owner([]byte(key), 3)
		if owner == 1 && line != "-ERR upstream unavailable\n" {
			t.Fatalf("key %s (shard 1, upstream down): %q", key, line)
		}
		if owner != 1 && !strings.HasPrefix(line, fmt.Sprintf("upstream=%d ", owner)) {
			t.Fatalf("key %s: %q", key, line)
		}
		c.Close()
	}
	s.stop(t)
}

// TestProxyPlain: the proxy over plain TCP without a PROXY header, in
// both forwarding modes (the proxy hijacks handed-off and relayed
// connections alike).
func TestProxyPlain(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		dir := t.TempDir()
		for i := 0; i < 2; i++ {
			startUpstream(t, filepath.Join(dir, fmt.Sprintf("up-%d.sock", i)), i, false)
		}
		s := serve(t, 2, "--forward", mode, "--handler", "proxy", "--upstream", "unix://"+dir+"/up-{shard}.sock")
		for i := 0; i < 10; i++ {
			key := fmt.Sprintf("k%d", i)
			c, err := net.DialTimeout("tcp", s.addr, soon)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(soon))
			fmt.Fprintf(c, "%s\nhello\n", key)
			r := bufio.NewReader(c)
			line, _ := r.ReadString('\n')
			if want := fmt.Sprintf("upstream=%d key=- src=-\n", shard.Owner([]byte(key), 2)); line != want {
				t.Fatalf("key %s: %q, want %q", key, line, want)
			}
			if echo, _ := r.ReadString('\n'); echo != "hello\n" {
				t.Fatalf("key %s: echo %q", key, echo)
			}
			c.Close()
		}
		s.stop(t)
	})
}

// TestProxyHTTPUpstreamDown: with keys from HTTP requests, a client whose
// shard's upstream is down gets 502 Bad Gateway, an HTTP answer, rather
// than the -ERR line.
func TestProxyHTTPUpstreamDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() // no upstream listens there
	s := serve(t, 2, "--handler", "proxy", "--upstream", "unix://"+dir+"/{shard}.sock", "--key-from", "http-header:X-Room")
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(refusal(t, s.addr, []byte(httpRequest("r1"))))), nil)
	if err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("upstream down: %v, %v; want 502", resp, err)
	}
	s.stop(t)
}
