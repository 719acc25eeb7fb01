package main

// Tests of the logs an operator reads: a flood of refusals is summarised,
// a clean shutdown warns of nothing, a drain counts what it waits for and
// what it closes, and JSON durations are seconds.

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
)

// checkLevels fails the test for any stderr line that is not a JSON log
// line at INFO or below.
func checkLevels(t *testing.T, p *proctest.Proc) {
	t.Helper()
	for _, raw := range strings.Split(strings.TrimSpace(p.Stderr()), "\n") {
		var l proctest.Line
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Errorf("not a JSON log line: %q", raw)
			continue
		}
		if lv := l.Str("level"); lv != "INFO" && lv != "DEBUG" {
			t.Errorf("%s line: %s", lv, raw)
		}
	}
}

// TestRefusalsSummarised: 200 connections with a malformed preamble give
// a handful of "refused a connection" lines, and summaries that count the
// others: lines plus suppressed counts are 200.
func TestRefusalsSummarised(t *testing.T) {
	t.Parallel()
	const total = 200
	s := serve(t, 2)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				c, err := net.DialTimeout("tcp", s.addr, soon)
				if err != nil {
					t.Error(err)
					continue
				}
				c.SetDeadline(time.Now().Add(soon))
				io.WriteString(c, "!bad\n")
				b, err := io.ReadAll(c)
				if err != nil || !strings.HasPrefix(string(b), "-ERR") {
					t.Errorf("reply to a malformed preamble: %q, %v", b, err)
				}
				c.Close()
			}
		}()
	}
	for i := range total {
		work <- i
	}
	close(work)
	wg.Wait()
	s.stop(t) // the last interval's summary is logged as the shard stops

	logged, suppressed := 0, 0
	reasons := map[string]bool{}
	for _, l := range s.Logs() {
		switch l.Msg() {
		case "refused a connection":
			logged++
			reasons[l.Str("reason")] = true
		case "refused connections (suppressed)":
			rs, _ := l["reasons"].(map[string]any)
			n := 0
			for r, v := range rs {
				if !reasons[r] {
					t.Errorf("summary of reason %q never logged in full: %v", r, l)
				}
				f, _ := v.(float64)
				n += int(f)
			}
			if n != l.Int("suppressed") {
				t.Errorf("summary's reasons add up to %d, its total says %d: %v", n, l.Int("suppressed"), l)
			}
			suppressed += n
		}
	}
	if len(reasons) != 1 {
		t.Errorf("reasons %v, want one", reasons)
	}
	// 5 per reason per 10s interval, per worker: a run slow enough to
	// span several intervals still logs far fewer than total.
	if logged > total/4 {
		t.Errorf("%d refusal lines for %d refused connections: not summarised", logged, total)
	}
	if logged+suppressed != total {
		t.Errorf("%d lines + %d suppressed = %d, want %d\n%s", logged, suppressed, logged+suppressed, total, s.Stderr())
	}
}

// TestCleanShutdownQuiet: SIGTERM to a 3-worker server that served
// connections on every shard logs no WARN or ERROR line: the workers
// going away one after another is expected.
func TestCleanShutdownQuiet(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		s := serve(t, 3, "--forward", mode)
		for _, c := range s.onEveryShard(t) {
			c.echo(t, "hello")
			c.Close()
		}
		s.stop(t)
		checkLevels(t, s.Proc)
		if !strings.Contains(s.Stderr(), `"msg":"mesh link down"`) {
			// Not an error in itself, but then the test did not see
			// what it is about.
			t.Log("no mesh link down line: the peers' exits were not seen")
		}
	})
}

// TestDrainLogsCounts: a drain logs how many connections it waits for,
// and at its deadline how many it closes; durations are seconds.
func TestDrainLogsCounts(t *testing.T) {
	t.Parallel()
	s := serve(t, 2, "--drain-timeout", "300ms")
	conns := s.onEveryShard(t) // one open Conn on each shard
	s.Signal(syscall.SIGTERM)
	if st := s.WaitExit(soon); st.ExitCode() != 0 {
		t.Fatalf("exit after the drain deadline: %v\n%s", st, s.Stderr())
	}
	for _, c := range conns {
		c.Close()
	}
	startConns, startPending, endConns, endPending := 0, 0, 0, 0
	for _, l := range s.Logs() {
		switch l.Msg() {
		case "drain: waiting for connections":
			startConns += l.Int("conns")
			startPending += l.Int("pending")
			if d := l.Duration("deadline"); d <= 0 || d > 300*time.Millisecond {
				t.Errorf("drain deadline %v in %v, want at most 0.3 (seconds)", d, l)
			}
		case "drain deadline: closing the connections left":
			endConns += l.Int("conns")
			endPending += l.Int("pending")
		case "draining: workers stop accepting; connections may finish":
			if d := l.Duration("drain_timeout"); d != 300*time.Millisecond {
				t.Errorf("drain_timeout %v (%v), want 0.3 seconds", d, l["drain_timeout"])
			}
		}
	}
	// Each shard holds its Conn (a gnet connection and an open Conn);
	// at the start, the connections onEveryShard closed may not all be
	// gone yet.
	if startConns < len(conns) || endConns != len(conns) {
		t.Errorf("drain start counts %d conns, deadline %d; want %d (or more at the start)\n%s", startConns, endConns, len(conns), s.Stderr())
	}
	if startPending < 2*len(conns) || endPending < 2*len(conns) {
		t.Errorf("drain start counts %d pending, deadline %d; want at least %d", startPending, endPending, 2*len(conns))
	}
}
