//go:build linux

package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// contentRules are the key rules of the plain HAProxy row
// (runner/haproxy.go): the TLS row must route the decrypted stream the
// same way.
const contentRules = `    tcp-request inspect-delay 5s
    tcp-request content set-var(sess.key) req.payload(0,0),field(1,"\r\n") if { req.payload(0,0) -m reg "\n" }
    tcp-request content accept if { var(sess.key) -m found }
    tcp-request content reject
    default_backend echo
`

func TestHAProxyConfig(t *testing.T) {
	p := haproxyParams{Addr: "127.0.0.1:9443", PEM: "/x/haproxy.pem", Backends: []string{"127.0.0.1:1", "127.0.0.1:2"}, MaxConn: 1000}
	for _, threads := range []int{0, 1} {
		p.Threads = threads
		var b bytes.Buffer
		if err := renderHAProxyConfig(&b, p); err != nil {
			t.Fatal(err)
		}
		cfg := b.String()
		for _, want := range []string{
			"    bind 127.0.0.1:9443 ssl crt /x/haproxy.pem curves X25519:P-256\n",
			contentRules,
			"    balance hash var(sess.key)\n    server b0 127.0.0.1:1 maxconn 1000\n    server b1 127.0.0.1:2 maxconn 1000\n",
			"    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:",
			"    mode tcp\n",
		} {
			if !strings.Contains(cfg, want) {
				t.Errorf("threads %d: config lacks %q:\n%s", threads, want, cfg)
			}
		}
		if got := strings.Contains(cfg, "nbthread 1\n"); got != (threads == 1) {
			t.Errorf("threads %d: nbthread line present %v:\n%s", threads, got, cfg)
		}
	}
	for _, bad := range []haproxyParams{{}, {Addr: "a:1", PEM: "p", MaxConn: 1}, {Addr: "a:1", Backends: []string{"b:1"}, MaxConn: 1}} {
		if err := renderHAProxyConfig(io.Discard, bad); err == nil {
			t.Errorf("%+v: rendered without an error", bad)
		}
	}
}

func TestFindHAProxyMissing(t *testing.T) {
	if _, err := findHAProxy(filepath.Join(t.TempDir(), "haproxy")); err != errNoHAProxy {
		t.Fatalf("findHAProxy of a missing file: %v, want errNoHAProxy", err)
	}
}

func TestParseHAProxyVersion(t *testing.T) {
	vv := "HAProxy version 2.6.12-1+deb12u3 2025/10/03 - https://haproxy.org/\nBuilt with OpenSSL version : OpenSSL 3.0.17 1 Jul 2025\nRunning on OpenSSL version : OpenSSL 3.0.19 27 Jan 2026\n"
	if got, want := parseHAProxyVersion(vv), "HAProxy 2.6.12, OpenSSL 3.0.19"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := parseHAProxyVersion(""), "HAProxy ?, OpenSSL ?"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// keyBackend is an in-process plain echo backend after a key line that
// counts the keys it served.
type keyBackend struct {
	ln   net.Listener
	mu   sync.Mutex
	keys map[string]int
	wg   sync.WaitGroup
}

func startKeyBackend(t *testing.T) *keyBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &keyBackend{ln: ln, keys: map[string]int{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				b.mu.Lock()
				b.keys[strings.TrimRight(line, "\r\n")]++
				b.mu.Unlock()
				_, _ = io.Copy(c, r)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); b.wg.Wait() })
	return b
}

// TestHAProxyRoutesTLSByKey runs the HAProxy row's configuration in front
// of two key-counting backends and checks, over TLS 1.3 and 1.2, that
// every connection is echoed, every key goes to one backend only, and
// both backends get keys (a hash that does not see the key would send
// them all to one).
func TestHAProxyRoutesTLSByKey(t *testing.T) {
	bin, err := findHAProxy("haproxy")
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	certFile, keyFile, pool := makeCert(dir)
	pem := filepath.Join(dir, "haproxy.pem")
	if err := writeHAProxyPEM(pem, certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	backends := []*keyBackend{startKeyBackend(t), startKeyBackend(t)}
	p := haproxyParams{Addr: freeAddr(), PEM: pem, MaxConn: 100, Threads: 1}
	for _, b := range backends {
		p.Backends = append(p.Backends, b.ln.Addr().String())
	}
	var cfg bytes.Buffer
	if err := renderHAProxyConfig(&cfg, p); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", cfgPath)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	if err := waitTLS(p.Addr, pool); err != nil {
		t.Fatal(err)
	}

	// An odd number of keys: round robin over two backends would then
	// send a key's connections to both.
	const keys, rounds = 15, 2
	versions := []uint16{tls.VersionTLS13, tls.VersionTLS12}
	for r := 0; r < rounds; r++ {
		for _, v := range versions {
			for k := 0; k < keys; k++ {
				// The probe differs per round and version: a hash of
				// more than the key would scatter a key's connections.
				probe := fmt.Sprintf("%d.%x.%d\n", r, v, k)
				if err := tlsEchoOnce(p.Addr, pool, v, fmt.Sprintf("n%d", k), probe); err != nil {
					t.Fatalf("round %d, version %x, key %d: %v", r, v, k, err)
				}
			}
		}
	}
	owner := map[string]int{}
	for i, b := range backends {
		b.mu.Lock()
		for key, n := range b.keys {
			if !strings.HasPrefix(key, "n") {
				continue // waitTLS's probe
			}
			if prev, ok := owner[key]; ok {
				t.Errorf("key %q went to backends %d and %d", key, prev, i)
			}
			owner[key] = i
			if n != rounds*len(versions) {
				t.Errorf("key %q: %d connections on backend %d, want %d", key, n, i, rounds*len(versions))
			}
		}
		b.mu.Unlock()
	}
	used := map[int]bool{}
	for _, i := range owner {
		used[i] = true
	}
	if len(owner) != keys || len(used) != 2 {
		t.Fatalf("%d keys on %d backends, want %d keys on 2: %v", len(owner), len(used), keys, owner)
	}
}

// tlsEchoOnce sends a key line and a probe over a new TLS connection of
// version v and checks the echo.
func tlsEchoOnce(addr string, pool *x509.CertPool, v uint16, key, probe string) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: v, MaxVersion: v, CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}})
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, key+"\r\n"+probe); err != nil {
		return err
	}
	got := make([]byte, len(probe))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if string(got) != probe {
		return fmt.Errorf("echo %q, want %q", got, probe)
	}
	return nil
}
