package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
)

// lineEcho serves echo after a line preamble on a real socket.
func lineEcho(t *testing.T) string {
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
				br := bufio.NewReader(c)
				if _, err := br.ReadSlice('\n'); err != nil {
					return
				}
				_, _ = br.WriteTo(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// jsonKeys is the contract scripts rely on (bench/compare parses it).
var jsonKeys = []string{"mode", "frame", "conns", "size", "keys", "dist", "depth",
	"duration_s", "requests", "rps", "mbps", "p50_us", "p90_us", "p99_us", "p999_us",
	"max_us", "errors", "error_total"}

func TestBenchJSON(t *testing.T) {
	addr := lineEcho(t)
	for _, mode := range [][]string{
		{"--mode", "pingpong"},
		{"--mode", "pipeline", "--depth", "4"},
		{"--mode", "connect", "--linger0"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"bench", "--addr", addr, "--conns", "3", "--requests", "300",
			"--size", "128", "--keys", "10", "--dist", "zipf", "--json"}, mode...)
		if code := run(args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d: %s", mode, code, stderr.String())
		}
		lines := strings.Split(strings.TrimRight(stdout.String(), "\n"), "\n")
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
			t.Fatalf("%v: last line of stdout is not JSON: %v\n%s", mode, err, stdout.String())
		}
		for _, k := range jsonKeys {
			if _, ok := m[k]; !ok {
				t.Errorf("%v: JSON has no %q: %v", mode, k, m)
			}
		}
		if m["mode"] != mode[1] || m["requests"] != float64(300) || m["size"] != float64(128) ||
			m["dist"] != "zipf" || m["frame"] != "line" || m["error_total"] != float64(0) {
			t.Errorf("%v: unexpected values %v", mode, m)
		}
		if errs, ok := m["errors"].(map[string]any); !ok || len(errs) != 0 {
			t.Errorf("%v: errors = %v, want {}", mode, m["errors"])
		}
		if !strings.Contains(stderr.String(), "req/s") {
			t.Errorf("%v: no human summary on stderr: %q", mode, stderr.String())
		}
	}
}

func TestBenchHumanAndExitCodes(t *testing.T) {
	addr := lineEcho(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"bench", "--addr", addr, "--conns", "2", "--requests", "50"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "50 requests") || strings.Contains(stdout.String(), "{") {
		t.Errorf("human summary: %q", stdout.String())
	}
	// A progress line only on a terminal: a buffer gets none.
	if strings.Contains(stderr.String(), "\r") {
		t.Errorf("progress written to a non-terminal: %q", stderr.String())
	}

	for _, bad := range [][]string{
		{"--mode", "sideways"},
		{"--frame", "direct"},
		{"--tls-insecure"},
		{"--size", "0", "--conns", "-1"},
		{"extra"},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := run(append([]string{"bench", "--addr", addr}, bad...), &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
		if stderr.Len() == 0 {
			t.Errorf("%v: no message", bad)
		}
	}

	// Nothing listening: the run completes, counts connect errors, exits 1,
	// and still prints its JSON.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	_ = ln.Close()
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"bench", "--addr", dead, "--duration", "100ms", "--conns", "1", "--json"}, &stdout, &stderr); code != 1 {
		t.Errorf("dead server: exit %d, want 1", code)
	}
	var r struct {
		Errors     map[string]int64 `json:"errors"`
		ErrorTotal int64            `json:"error_total"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r); err != nil || r.Errors["connect"] == 0 || r.ErrorTotal == 0 {
		t.Errorf("dead server: %v %+v from %q", err, r, stdout.String())
	}
}
