package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer for a logger shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, ln := range bytes.Split(bytes.TrimSpace(s.b.Bytes()), []byte("\n")) {
		if len(ln) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(ln, &m); err != nil {
			t.Fatalf("bad log line %q: %v", ln, err)
		}
		out = append(out, m)
	}
	return out
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestRateLog(burst int, interval time.Duration) (*rateLog, *syncBuffer, *fakeClock) {
	buf := new(syncBuffer)
	l := newRateLog(slog.New(slog.NewJSONHandler(buf, nil)), burst, interval)
	clk := &fakeClock{t: time.Unix(1000, 0)}
	l.now = clk.now
	return l, buf, clk
}

// count returns the number of lines with msg, and the summary lines.
func countLines(lines []map[string]any, msg string) (n int, summaries []map[string]any) {
	for _, m := range lines {
		switch m["msg"] {
		case msg:
			n++
		case "refused connections (suppressed)":
			summaries = append(summaries, m)
		}
	}
	return n, summaries
}

func reasonCount(sum map[string]any, reason string) int {
	rs, _ := sum["reasons"].(map[string]any)
	f, _ := rs[reason].(float64)
	return int(f)
}

// N events of one reason in one interval give burst lines, and one
// summary with N-burst once the interval ends.
func TestRateLogBurstThenSummary(t *testing.T) {
	l, buf, clk := newTestRateLog(5, 10*time.Second)
	for range 100 {
		l.Info("refused a connection", "reason", "bad preamble", "remote", "x")
	}
	n, sums := countLines(buf.lines(t), "refused a connection")
	if n != 5 || len(sums) != 0 {
		t.Fatalf("within the interval: %d lines, %d summaries; want 5, 0", n, len(sums))
	}
	clk.add(10 * time.Second)
	l.Info("refused a connection", "reason", "bad preamble", "remote", "x")
	n, sums = countLines(buf.lines(t), "refused a connection")
	if n != 6 || len(sums) != 1 {
		t.Fatalf("after the interval: %d lines, %d summaries; want 6, 1", n, len(sums))
	}
	if got := reasonCount(sums[0], "bad preamble"); got != 95 {
		t.Errorf("summary counts %d for the reason, want 95: %v", got, sums[0])
	}
	if got := sums[0]["suppressed"].(float64); got != 95 {
		t.Errorf("summary total %v, want 95", got)
	}
	l.close() // nothing suppressed in the new interval: no summary
	if _, sums = countLines(buf.lines(t), ""); len(sums) != 1 {
		t.Errorf("close logged a summary of nothing: %d summaries", len(sums))
	}
	if got := l.Totals()["bad preamble"]; got != 101 {
		t.Errorf("total %d, want 101", got)
	}
}

// Reasons are limited and counted apart.
func TestRateLogReasonsApart(t *testing.T) {
	l, buf, _ := newTestRateLog(2, time.Hour)
	for range 10 {
		l.Info("refused a connection", "reason", "a")
	}
	for range 3 {
		l.Info("refused a connection", "reason", "b")
	}
	l.Info("TLS handshake failed", "err", "c")
	l.close()
	lines := buf.lines(t)
	n, sums := countLines(lines, "refused a connection")
	hs, _ := countLines(lines, "TLS handshake failed")
	if n != 4 || hs != 1 || len(sums) != 1 {
		t.Fatalf("%d refusal lines, %d handshake lines, %d summaries; want 4, 1, 1", n, hs, len(sums))
	}
	if a, b, c := reasonCount(sums[0], "a"), reasonCount(sums[0], "b"), reasonCount(sums[0], "c"); a != 8 || b != 1 || c != 0 {
		t.Errorf("suppressed a=%d b=%d c=%d, want 8 1 0", a, b, c)
	}
	tot := l.Totals()
	if tot["a"] != 10 || tot["b"] != 3 || tot["c"] != 1 {
		t.Errorf("totals %v", tot)
	}
}

// The summary comes by itself once the interval ends, without another
// event (the real clock; the test waits for the line, no deadline but the
// test's own).
func TestRateLogTimerFlushes(t *testing.T) {
	buf := new(syncBuffer)
	l := newRateLog(slog.New(slog.NewJSONHandler(buf, nil)), 1, 20*time.Millisecond)
	defer l.close()
	for range 3 {
		l.Info("refused a connection", "reason", "r")
	}
	for {
		if _, sums := countLines(buf.lines(t), ""); len(sums) == 1 {
			if got := reasonCount(sums[0], "r"); got != 2 {
				t.Fatalf("summary counts %d, want 2", got)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Concurrent events: every one is either logged or counted in a summary.
func TestRateLogConcurrent(t *testing.T) {
	l, buf, clk := newTestRateLog(5, 10*time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				l.Info("refused a connection", "reason", fmt.Sprint("r", g%2))
				if i%50 == 0 {
					clk.add(3 * time.Second)
				}
			}
		}()
	}
	wg.Wait()
	l.close()
	lines := buf.lines(t)
	n, sums := countLines(lines, "refused a connection")
	total := n
	for _, s := range sums {
		total += int(s["suppressed"].(float64))
	}
	if total != 8*200 {
		t.Errorf("%d lines + suppressed counts = %d, want %d", n, total, 8*200)
	}
	if n >= 8*200/2 {
		t.Errorf("%d lines for %d events: not rate-limited", n, 8*200)
	}
	if tot := l.Totals(); tot["r0"]+tot["r1"] != 8*200 {
		t.Errorf("totals %v", tot)
	}
}
