package main

// Keys without a preamble (--key-from) with the real binary: the client's
// address, HTTP requests, the TLS server name, and the PROXY protocol in
// front of each. Every test checks that keys land on shard.Owner, that
// the handler gets the client's bytes unchanged, and that bad input is
// refused in the client's own language without disturbing the rest.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/proctest"
	"github.com/subordinate/subordinate/internal/proxyproto"
	"github.com/subordinate/subordinate/shard"
)

// whoamiReply is whoami's first line, parsed.
type whoamiReply struct {
	line               string
	shard, via         int
	key, remote        string
	relayed, direct    bool
	sni                string
	forwardedOrRelayed bool
}

// parseWhoami parses whoami's first line.
func parseWhoami(t *testing.T, line string) whoamiReply {
	t.Helper()
	m := shardRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("reply %q names no shard", line)
	}
	w := whoamiReply{line: line, via: -1}
	w.shard, _ = strconv.Atoi(m[1])
	if m := viaRE.FindStringSubmatch(line); m != nil {
		w.via, _ = strconv.Atoi(m[1])
	}
	if i := strings.Index(line, "key="); i >= 0 {
		w.key, _ = strconv.QuotedPrefix(line[i+len("key="):])
		w.key, _ = strconv.Unquote(w.key)
	}
	if i := strings.Index(line, "remote="); i >= 0 {
		w.remote, _, _ = strings.Cut(line[i+len("remote="):], " ")
		w.remote = strings.TrimSpace(w.remote)
	}
	if i := strings.Index(line, "sni="); i >= 0 {
		w.sni, _ = strconv.QuotedPrefix(line[i+len("sni="):])
		w.sni, _ = strconv.Unquote(w.sni)
	}
	w.relayed = relayedRE.MatchString(strings.TrimSuffix(line, "\n"))
	w.direct = strings.Contains(line, "direct=true")
	w.forwardedOrRelayed = w.via >= 0 && w.via != w.shard
	return w
}

// exchange dials addr from local (nil: any), writes send, and returns the
// connection and its reader after whoami's first line.
func exchange(t *testing.T, addr string, local net.Addr, send []byte) (net.Conn, *bufio.Reader, whoamiReply) {
	t.Helper()
	d := net.Dialer{Timeout: soon, LocalAddr: local}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(soon))
	if len(send) > 0 {
		if _, err := c.Write(send); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reply after %q: %q, %v", send, line, err)
	}
	return c, r, parseWhoami(t, line)
}

// refusal dials addr, writes send and returns everything the server
// answers until it closes.
func refusal(t *testing.T, addr string, send []byte) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, soon)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(soon))
	if len(send) > 0 {
		_, _ = c.Write(send) // the server may close before it read all
	}
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("answer to %.40q: %q, %v", send, b, err)
	}
	return string(b)
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// checkOwner fails unless w is on key's owner among n shards.
func checkOwner(t *testing.T, w whoamiReply, key string, n int) {
	t.Helper()
	if w.key != key {
		t.Fatalf("reply %q: key %q, want %q", w.line, w.key, key)
	}
	if want := shard.Owner([]byte(key), n); w.shard != want {
		t.Fatalf("key %q served by shard %d, the mapping says %d", key, w.shard, want)
	}
}

// TestKeyFromClientIP: with --key-from client-ip, a connection is routed
// by its source address with no byte read (loopback has every 127/8
// address), and with client-ip/24 a whole network lands on one shard.
func TestKeyFromClientIP(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		const workers = 3
		s := serve(t, workers, "--forward", mode, "--key-from", "client-ip")
		forwarded := 0
		for i := 1; i <= 60; i++ {
			ip := fmt.Sprintf("127.0.%d.%d", i/7, 1+i%250)
			c, r, w := exchange(t, s.addr, &net.TCPAddr{IP: net.ParseIP(ip)}, nil)
			checkOwner(t, w, ip, workers)
			checkRelayed(t, mode, false, w.shard, w.via, w.relayed)
			if w.forwardedOrRelayed {
				forwarded++
			}
			if !strings.HasPrefix(w.remote, ip+":") {
				t.Fatalf("remote %q, want %s:port", w.remote, ip)
			}
			echoOn(t, c, r, "ping")
			c.Close()
		}
		if forwarded == 0 {
			t.Fatal("no connection was forwarded: the test proves nothing")
		}
		s.stop(t)

		n := serve(t, workers, "--forward", mode, "--key-from", "client-ip/24")
		for i := 1; i <= 10; i++ {
			ip := fmt.Sprintf("127.0.9.%d", i)
			_, _, w := exchange(t, n.addr, &net.TCPAddr{IP: net.ParseIP(ip)}, nil)
			checkOwner(t, w, "127.0.9.0/24", workers)
		}
		n.stop(t)
	})
}

// echoOn checks a round trip on an open connection.
func echoOn(t *testing.T, c net.Conn, r *bufio.Reader, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(soon))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != msg+"\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}
}

// httpRequest is a browser-like request with the key in every place an
// http-* source looks.
func httpRequest(key string) string {
	return "GET /rooms/" + key + "/ws?room=" + key + "&x=1 HTTP/1.1\r\n" +
		"Host: chat.example\r\n" +
		"User-Agent: test\r\n" +
		"X-Room: " + key + "\r\n" +
		"Cookie: theme=dark; room=" + key + "\r\n" +
		"\r\n"
}

// TestKeyFromHTTP: each http-* source finds the key in the first
// request's head and routes it to its owner, and the handler gets the
// request byte for byte (whoami echoes it after its line), with what the
// client sent after it.
func TestKeyFromHTTP(t *testing.T) {
	t.Parallel()
	const workers = 3
	for _, src := range []string{"http-header:X-Room", "http-cookie:room", "http-path:2", "http-query:room"} {
		t.Run(src, func(t *testing.T) {
			t.Parallel()
			for _, mode := range modes {
				s := serve(t, workers, "--forward", mode, "--key-from", src)
				forwarded := 0
				for i := 0; i < 40; i++ {
					key := fmt.Sprintf("room-%d", i)
					req := httpRequest(key)
					c, r, w := exchange(t, s.addr, nil, []byte(req+"after\n"))
					checkOwner(t, w, key, workers)
					checkRelayed(t, mode, false, w.shard, w.via, w.relayed)
					if w.forwardedOrRelayed {
						forwarded++
					}
					got := make([]byte, len(req)+len("after\n"))
					if _, err := io.ReadFull(r, got); err != nil || string(got) != req+"after\n" {
						t.Fatalf("the handler got %q, %v; want the request unchanged", got, err)
					}
					c.Close()
				}
				if forwarded == 0 {
					t.Fatal("no connection was forwarded: the test proves nothing")
				}
				s.stop(t)
			}
		})
	}
}

// TestKeyFromHTTPRefusals: a request the server cannot route gets an HTTP
// response with the status that says why, and the server goes on.
func TestKeyFromHTTPRefusals(t *testing.T) {
	t.Parallel()
	secret := []byte("http-direct-routing-secret-0123456789")
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	s := serve(t, 2, "--key-from", "http-header:X-Room", "--max-http-head", "4096", "--preamble-timeout", "1s", "--secret-file", file)
	status := func(answer string) int {
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), nil)
		if err != nil {
			t.Fatalf("answer %q is not an HTTP response: %v", answer, err)
		}
		return resp.StatusCode
	}
	cases := []struct {
		name string
		send string
		want int
	}{
		{"no such header", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"head over the limit", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 5000) + "\r\nX-Room: r\r\n\r\n", 431},
		{"request line that never ends", "GET /" + strings.Repeat("a", 5000), 414},
		{"not HTTP", "hello there\r\n\r\n", 400},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
		{"bad direct header", "GET / HTTP/1.1\r\nSubordinate-Direct: 1 00\r\n\r\n", 400},
		{"wrong direct token", "GET / HTTP/1.1\r\nSubordinate-Direct: 1 " + strings.Repeat("ab", 32) + "\r\n\r\n", 400},
		{"silence", "GET / HTTP/1.1\r\n", 408},
	}
	for _, tc := range cases {
		if got := status(refusal(t, s.addr, []byte(tc.send))); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	// A direct-routing header with the token reaches the shard it names.
	for target := 0; target < 2; target++ {
		tok := frame.DirectToken(secret, uint32(target))
		req := fmt.Sprintf("GET / HTTP/1.1\r\nHost: a\r\nSubordinate-Direct: %d %x\r\n\r\n", target, tok[:])
		_, _, w := exchange(t, s.addr, nil, []byte(req))
		if w.shard != target || !w.direct {
			t.Fatalf("direct request to shard %d: reply %q", target, w.line)
		}
	}
	// Nothing else was disturbed.
	_, _, w := exchange(t, s.addr, nil, []byte(httpRequest("after")))
	checkOwner(t, w, "after", 2)
	s.stop(t)

	// With a default key, a request without one is routed by it.
	d := serve(t, 2, "--key-from", "http-header:X-Room", "--default-key", "lobby")
	_, _, w = exchange(t, d.addr, nil, []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	checkOwner(t, w, "lobby", 2)
	d.stop(t)
}

// recordingConn records what a TLS client writes, and fails its reads:
// its first flight is the ClientHello.
type recordingConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *recordingConn) Write(b []byte) (int, error) { return c.buf.Write(b) }
func (c *recordingConn) Read([]byte) (int, error)    { return 0, errors.New("recording only") }
func (c *recordingConn) Close() error                { return nil }
func (c *recordingConn) SetDeadline(time.Time) error { return nil }

// clientHello returns the bytes of a ClientHello crypto/tls sends for
// serverName.
func clientHello(t *testing.T, serverName string) []byte {
	t.Helper()
	rc := &recordingConn{}
	_ = tls.Client(rc, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}).Handshake()
	if rc.buf.Len() == 0 {
		t.Fatal("crypto/tls wrote no ClientHello")
	}
	return rc.buf.Bytes()
}

// trickleConn writes one byte per segment.
type trickleConn struct{ net.Conn }

func (c trickleConn) Write(b []byte) (int, error) {
	for i := range b {
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
	}
	return len(b), nil
}

// tlsWhoami makes a TLS connection with serverName (trickled one byte
// per segment when trickle) and returns whoami's line.
func tlsWhoami(t *testing.T, addr, serverName string, pool *tls.Config, trickle bool) (whoamiReply, error) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, soon)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(soon))
	var nc net.Conn = raw
	if trickle {
		raw.(*net.TCPConn).SetNoDelay(true)
		nc = trickleConn{raw}
	}
	cfg := pool.Clone()
	cfg.ServerName = serverName
	tc := tls.Client(nc, cfg)
	if err := tc.Handshake(); err != nil {
		return whoamiReply{}, err
	}
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil {
		return whoamiReply{}, err
	}
	return parseWhoami(t, line), nil
}

// TestKeyFromSNI: with --key-from sni on a tls:// listener, a connection
// is routed by its ClientHello's server name before any handshake, and
// its owner terminates TLS: no connection is relayed, whichever worker
// accepted it. Names are keys in lower case; a ClientHello that arrives
// a byte at a time is read all the same; a client without SNI gets an
// unrecognized_name alert, or the default key; plaintext gets an alert.
func TestKeyFromSNI(t *testing.T) {
	t.Parallel()
	const workers = 3
	cert, key, pool := proctest.SelfSigned(t, "*.rooms.test", "127.0.0.1")
	s := serve(t, workers, "--listen", "tls://127.0.0.1:0", "--cert", cert, "--key", key, "--key-from", "sni")
	client := &tls.Config{RootCAs: pool}
	forwarded := 0
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("Room-%d.Rooms.Test", i)
		w, err := tlsWhoami(t, s.addr, name, client, i%10 == 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkOwner(t, w, strings.ToLower(name), workers)
		if w.relayed {
			t.Fatalf("%s: relayed (%q): the owner should terminate TLS", name, w.line)
		}
		if w.sni != strings.ToLower(name) && w.sni != name {
			t.Fatalf("%s: sni %q", name, w.sni)
		}
		if w.forwardedOrRelayed {
			forwarded++
		}
	}
	if forwarded == 0 {
		t.Fatal("no connection was forwarded: the test proves nothing")
	}
	// No SNI: crypto/tls sends none when dialling an IP address.
	if _, err := tlsWhoami(t, s.addr, "127.0.0.1", client, false); err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Fatalf("without SNI: %v, want an unrecognized_name alert", err)
	}
	// Plaintext on the TLS port: a fatal alert record, then the close.
	if a := refusal(t, s.addr, []byte("hello\n")); len(a) < 7 || a[0] != 21 {
		t.Fatalf("plaintext on an sni listener: answer %q, want a TLS alert", a)
	}
	// A ClientHello cut short, then the close: nothing else is disturbed.
	hello := clientHello(t, "cut.rooms.test")
	_ = refusal(t, s.addr, hello[:len(hello)/2])
	if w, err := tlsWhoami(t, s.addr, "after.rooms.test", client, false); err != nil {
		t.Fatal(err)
	} else {
		checkOwner(t, w, "after.rooms.test", workers)
	}
	s.stop(t)

	d := serve(t, workers, "--listen", "tls://127.0.0.1:0", "--cert", cert, "--key", key, "--key-from", "sni", "--default-key", "lobby")
	w, err := tlsWhoami(t, d.addr, "127.0.0.1", client, false)
	if err != nil {
		t.Fatal(err)
	}
	checkOwner(t, w, "lobby", workers)
	d.stop(t)
}

// TestKeyFromSNIPassthrough: on a plain tcp:// listener, sni routes a TLS
// stream without terminating it: the handler gets the ClientHello.
func TestKeyFromSNIPassthrough(t *testing.T) {
	t.Parallel()
	s := serve(t, 2, "--key-from", "sni")
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("pass-%d.example", i)
		hello := clientHello(t, name)
		_, r, w := exchange(t, s.addr, nil, hello)
		checkOwner(t, w, name, 2)
		got := make([]byte, len(hello))
		if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, hello) {
			t.Fatalf("the handler did not get the ClientHello unchanged: %v", err)
		}
	}
	s.stop(t)
}

// proxyV2 returns a PROXY protocol v2 header for a TCP connection from
// src to dst.
func proxyV2(t *testing.T, src, dst string) []byte {
	t.Helper()
	sa, _ := net.ResolveTCPAddr("tcp", src)
	da, _ := net.ResolveTCPAddr("tcp", dst)
	h := proxyproto.Header{Source: sa, Destination: da}
	b, err := h.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAcceptProxyProtocol: behind a trusted load balancer, the PROXY
// header's client is the connection's RemoteAddr and its client-ip key,
// with every key source and over TLS; untrusted sources and malformed
// headers are refused and disturb nothing.
func TestAcceptProxyProtocol(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		const workers = 3
		pp := []string{"--forward", mode, "--accept-proxy-protocol", "--trusted-proxy", "127.0.0.0/8,::1"}
		s := serve(t, workers, append(pp, "--key-from", "client-ip")...)
		forwarded := 0
		for i := 0; i < 30; i++ {
			client := fmt.Sprintf("203.0.113.%d", i+1)
			hdr := []byte(fmt.Sprintf("PROXY TCP4 %s 192.0.2.1 %d 443\r\n", client, 40000+i))
			if i%2 == 1 {
				hdr = proxyV2(t, fmt.Sprintf("%s:%d", client, 40000+i), "192.0.2.1:443")
			}
			c, r, w := exchange(t, s.addr, nil, hdr)
			checkOwner(t, w, client, workers)
			if want := fmt.Sprintf("%s:%d", client, 40000+i); w.remote != want {
				t.Fatalf("remote %q, want %s (from the PROXY header)", w.remote, want)
			}
			if w.forwardedOrRelayed {
				forwarded++
			}
			echoOn(t, c, r, "through the proxy")
		}
		if forwarded == 0 {
			t.Fatal("no connection was forwarded: the test proves nothing")
		}
		// A LOCAL header (a health check) keeps the socket's address.
		_, _, w := exchange(t, s.addr, nil, []byte("PROXY UNKNOWN\r\n"))
		checkOwner(t, w, "127.0.0.1", workers)
		// Malformed headers.
		for _, bad := range []string{"GET / HTTP/1.1\r\n\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", "PROXY " + strings.Repeat("x", 200)} {
			if a := refusal(t, s.addr, []byte(bad)); !strings.HasPrefix(a, "-ERR bad PROXY header") {
				t.Fatalf("%.30q: answer %q, want -ERR bad PROXY header", bad, a)
			}
		}
		s.stop(t)

		// With the preamble: the PROXY header, then the key line.
		f := serve(t, workers, pp...)
		_, _, w = exchange(t, f.addr, nil, []byte("PROXY TCP6 2001:db8::7 2001:db8::1 5000 443\r\nmy-key\n"))
		checkOwner(t, w, "my-key", workers)
		if w.remote != "[2001:db8::7]:5000" {
			t.Fatalf("remote %q, want [2001:db8::7]:5000", w.remote)
		}
		f.stop(t)

		// Not from a trusted network: refused before anything is read.
		u := serve(t, workers, "--forward", mode, "--accept-proxy-protocol", "--trusted-proxy", "10.0.0.0/8")
		if a := refusal(t, u.addr, []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nk\n")); !strings.HasPrefix(a, "-ERR untrusted PROXY source") {
			t.Fatalf("untrusted source: answer %q", a)
		}
		u.stop(t)
	})
}

// TestAcceptProxyProtocolTLS: a PROXY header in front of TLS, with keys
// from the preamble (this worker terminates TLS) and from SNI (the owner
// does).
func TestAcceptProxyProtocolTLS(t *testing.T) {
	t.Parallel()
	cert, key, pool := proctest.SelfSigned(t, "*.rooms.test")
	for _, src := range []string{"frame", "sni"} {
		s := serve(t, 3, "--listen", "tls://127.0.0.1:0", "--cert", cert, "--key", key, "--key-from", src,
			"--accept-proxy-protocol", "--trusted-proxy", "127.0.0.1")
		for i := 0; i < 12; i++ {
			name := fmt.Sprintf("r%d.rooms.test", i)
			raw, err := net.DialTimeout("tcp", s.addr, soon)
			if err != nil {
				t.Fatal(err)
			}
			raw.SetDeadline(time.Now().Add(soon))
			client := fmt.Sprintf("198.51.100.%d:%d", i+1, 1000+i)
			if _, err := raw.Write(proxyV2(t, client, "192.0.2.1:443")); err != nil {
				t.Fatal(err)
			}
			tc := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: name})
			if src == "frame" {
				fmt.Fprintf(tc, "%s\n", name)
			} else if err := tc.Handshake(); err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			line, err := bufio.NewReader(tc).ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v", src, err)
			}
			w := parseWhoami(t, line)
			checkOwner(t, w, name, 3)
			if w.remote != client {
				t.Fatalf("%s: remote %q, want %s", src, w.remote, client)
			}
			raw.Close()
		}
		s.stop(t)
	}
}
