//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"sync"
	"testing"
	"time"
)

// fakeBenchEnv makes the test binary act as a minimal stand-in for
// `subordinate bench --json`, so the runner can be tested end to end
// without the real load generator. It lives in a test file on purpose: it
// is not the load generator, only enough of its CLI and JSON contract to
// drive the runner.
const fakeBenchEnv = "COMPARE_FAKE_BENCH"

func TestMain(m *testing.M) {
	if os.Getenv(fakeBenchEnv) == "1" {
		os.Exit(fakeBench(os.Args[1:]))
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func fakeBench(args []string) int {
	if len(args) == 0 || args[0] != "bench" {
		fmt.Fprintln(os.Stderr, "fake bench: want the bench subcommand")
		return 2
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	addr := fs.String("addr", "", "")
	conns := fs.Int("conns", 1, "")
	dur := fs.Duration("duration", time.Second, "")
	size := fs.Int("size", 16, "")
	keys := fs.Int("keys", 1, "")
	dist := fs.String("dist", "uniform", "")
	frame := fs.String("frame", "line", "")
	mode := fs.String("mode", "pingpong", "")
	depth := fs.Int("depth", 1, "")
	linger0 := fs.Bool("linger0", false, "")
	_ = fs.Bool("json", false, "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *mode != "pipeline" {
		*depth = 1
	}
	var (
		mu   sync.Mutex
		lats []time.Duration
		errs = map[string]int64{}
		wg   sync.WaitGroup
	)
	deadline := time.Now().Add(*dur)
	payload := bytes.Repeat([]byte{'x'}, *size)
	fail := func(kind string) { mu.Lock(); errs[kind]++; mu.Unlock() }
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			got := make([]byte, *size**depth)
			for time.Now().Before(deadline) {
				if c == nil {
					var err error
					if c, err = net.DialTimeout("tcp", *addr, 5*time.Second); err != nil {
						fail("dial")
						return
					}
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					fmt.Fprintf(c, "k%d\n", rand.IntN(*keys))
				}
				start := time.Now()
				if _, err := c.Write(bytes.Repeat(payload, *depth)); err != nil {
					fail("write")
					return
				}
				if _, err := io.ReadFull(c, got); err != nil {
					fail("read")
					return
				}
				if !bytes.Equal(got, bytes.Repeat(payload, *depth)) {
					fail("mismatch")
					return
				}
				mu.Lock()
				for j := 0; j < *depth; j++ {
					lats = append(lats, time.Since(start))
				}
				mu.Unlock()
				if *mode == "connect" {
					if *linger0 {
						_ = c.(*net.TCPConn).SetLinger(0)
					}
					c.Close()
					c = nil
				}
			}
			if c != nil {
				c.Close()
			}
		}()
	}
	wg.Wait()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return float64(lats[int(p*float64(len(lats)-1))].Microseconds())
	}
	var total int64
	for _, n := range errs {
		total += n
	}
	secs := dur.Seconds()
	out := map[string]any{
		"mode": *mode, "frame": *frame, "conns": *conns, "size": *size, "keys": *keys,
		"dist": *dist, "depth": *depth, "duration_s": secs, "requests": len(lats),
		"rps": float64(len(lats)) / secs, "mbps": float64(len(lats)**size) / secs / 1e6,
		"p50_us": pct(0.5), "p90_us": pct(0.9), "p99_us": pct(0.99), "p999_us": pct(0.999),
		"max_us": pct(1), "errors": errs, "error_total": total,
	}
	fmt.Println("fake bench: done")
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return 0
}
