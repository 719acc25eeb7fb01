package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// rawEcho echoes every byte from the first on a real socket: what a
// Subordinate echo handler sends back with --key-from client-ip (no
// preamble) or http-* (the request head is early data, echoed too).
func rawEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestBenchKeyFrom: --key-from reaches the run and its JSON (absent for
// the preamble), and combinations it cannot work with are flag errors.
func TestBenchKeyFrom(t *testing.T) {
	addr := rawEcho(t)
	for _, spec := range []string{"client-ip", "http-path:2", "http-header:X-Key"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"bench", "--addr", addr, "--key-from", spec, "--mode", "connect", "--linger0",
			"--conns", "2", "--requests", "40", "--json"}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d: %s", spec, code, stderr.String())
		}
		var m map[string]any
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
			t.Fatal(err)
		}
		if m["key_from"] != spec || m["requests"] != float64(40) || m["error_total"] != float64(0) {
			t.Errorf("%s: %v", spec, m)
		}
		if !strings.Contains(stderr.String(), "key-from "+spec) {
			t.Errorf("%s: summary %q does not name the source", spec, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"bench", "--addr", lineEcho(t), "--requests", "10", "--key-from", "frame", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("frame: exit %d: %s", code, stderr.String())
	}
	if strings.Contains(stdout.String(), "key_from") {
		t.Errorf("frame: key_from in %s", stdout.String())
	}
	for _, bad := range [][]string{
		{"--key-from", "sni"},
		{"--key-from", "client-ip", "--addr", "localhost:1"},
		{"--key-from", "http-path:0"},
		{"--key-from", "http-path:1", "--frame", "binary"},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := run(append([]string{"bench", "--addr", addr}, bad...), &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%v: exit %d (%q), want 2 and a message", bad, code, stderr.String())
		}
	}
}

// http400 answers every connection with an HTTP 400 response and closes
// it, as a server with --key-from http-* does when it finds no key.
func http400(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// TestBenchKeyFromSaysWhy: when bench and the server disagree on where
// keys are, the run says so and names --key-from.
func TestBenchKeyFromSaysWhy(t *testing.T) {
	raw, refuse := rawEcho(t), http400(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"preamble echoed", []string{"--addr", raw}, []string{`got back "k`, "the server echoed bench's preamble", "--key-from"}},
		{"HTTP server", []string{"--addr", refuse}, []string{"HTTP/1.1 400", "it reads keys from an HTTP request", "--key-from"}},
		{"no key", []string{"--addr", refuse, "--key-from", "http-cookie:sid"},
			[]string{"the server refused the connection: HTTP/1.1 400 Bad Request", "found no key", "http-cookie:sid"}},
	} {
		code, _, errs := benchRun(append(tc.args, "--duration", "10m", "--max-errors", "1")...)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1", tc.name, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, w, errs)
			}
		}
	}
}
