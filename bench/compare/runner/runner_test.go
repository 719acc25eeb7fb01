//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// peerBins builds gnetecho, stdecho, idleconns and subordinate once per
// test binary.
func peerBins(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "compare-bins-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+"/",
			"../gnetecho", "../stdecho", "../idleconns", "github.com/subordinate/subordinate/cmd/subordinate")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func testEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	c := config{BinDir: peerBins(t), Out: dir, Workers: 2, Runs: 1, Duration: time.Second,
		Conns: 4, ConnectConns: 2, Size: 32, Keys: 10, Depth: 4, Node: "node", HAProxy: "haproxy",
		NodeScript: "../nodecluster/server.js"}
	e := &env{cfg: c, logDir: dir, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return e
}

func startTestRow(t *testing.T, e *env, id string) *server {
	t.Helper()
	for _, r := range rows() {
		if r.ID == id {
			s, err := e.startRow(r)
			if err != nil {
				t.Fatalf("start %s: %v", id, err)
			}
			t.Cleanup(s.stop)
			return s
		}
	}
	t.Fatalf("no row %q", id)
	return nil
}

// TestPeersEchoAfterPreamble runs each peer server on a real socket and
// checks the preamble contract every row must keep.
func TestPeersEchoAfterPreamble(t *testing.T) {
	peers := []string{"gnet", "std"}
	if _, err := exec.LookPath("node"); err == nil {
		peers = append(peers, "node")
	}
	for _, id := range peers {
		t.Run(id, func(t *testing.T) {
			e := testEnv(t)
			s := startTestRow(t, e, id)
			checkEchoContract(t, s.Addr)
		})
	}
}

func checkEchoContract(t *testing.T, addr string) {
	t.Helper()
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	expect := func(c net.Conn, want string) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("read %q: %v", want, err)
		}
		if string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}

	// Preamble and payload in one write; "\r\n" ending.
	c := dial()
	io.WriteString(c, "key-1\r\nhello")
	expect(c, "hello")
	io.WriteString(c, "\nmore\r\n")
	expect(c, "\nmore\r\n")

	// Preamble split over writes, payload starting in the same write as
	// the end of the key.
	c = dial()
	io.WriteString(c, "ke")
	time.Sleep(20 * time.Millisecond) // make separate segments likely; not asserted
	io.WriteString(c, "y-2\nwor")
	io.WriteString(c, "ld")
	expect(c, "world")

	// A long stream of binary bytes comes back unchanged, while read
	// concurrently (the server must not need the client to stop writing).
	c = dial()
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	go func() {
		io.WriteString(c, "bulk\n")
		c.Write(big)
	}()
	got := make([]byte, len(big))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("bulk read: %v", err)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("bulk echo differs")
	}

	// A key over the limit gets an error and a close.
	c = dial()
	io.WriteString(c, strings.Repeat("k", 2000))
	b, err := io.ReadAll(c)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("long key: %v", err)
	}
	// The peers answer exactly "-ERR key too long\n"; Subordinate says why.
	if !strings.HasPrefix(string(b), "-ERR key too long") || !strings.HasSuffix(string(b), "\n") {
		t.Fatalf("long key: got %q", b)
	}

	// Many connections at once, each with its own key.
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- echoOnce(addr, fmt.Sprintf("c%d", i), fmt.Sprintf("payload %d\n", i), 10*time.Second)
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSubordinateRowsEcho starts the Subordinate rows, with 1 worker and
// with N in each forwarding mode, from the real binary, and holds them to
// the same contract as the peers: the runner's command lines (--forward
// among them) are ones `subordinate serve` accepts.
func TestSubordinateRowsEcho(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real multi-process servers")
	}
	for _, id := range []string{"sub1", "subN", "subN-relay"} {
		t.Run(id, func(t *testing.T) {
			e := testEnv(t)
			e.cfg.Subordinate = filepath.Join(e.cfg.BinDir, "subordinate")
			s := startTestRow(t, e, id)
			if id != "sub1" && !strings.Contains(s.note, "--workers 2") {
				t.Errorf("note %q: want --workers 2", s.note)
			}
			if want := map[string]string{"sub1": "", "subN": "--forward handoff", "subN-relay": "--forward relay"}[id]; !strings.Contains(s.note, want) ||
				(want == "" && strings.Contains(s.note, "--forward")) {
				t.Errorf("note %q: want %q", s.note, want)
			}
			checkEchoContract(t, s.Addr)
		})
	}
}

// TestHAProxyKeysStick checks the HAProxy row routes by the key: the right
// configuration passes the key check, and the naive `balance hash
// req.payload(0,0)` (which hashes an empty buffer in HAProxy 2.6) fails it.
func TestHAProxyKeysStick(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy not installed (bench/compare/run.sh installs it)")
	}
	e := testEnv(t)
	if got := e.checkHAProxy(); !strings.HasPrefix(got, "ok:") {
		t.Fatalf("key check: %s", got)
	}
	if got := e.checkHAProxyBalance("hash req.payload(0,0)"); !strings.HasPrefix(got, "FAILED:") {
		t.Fatalf("key check passed a configuration that does not route by key: %s", got)
	}
}

// TestRunnerEndToEnd runs the whole runner on two peers with the stand-in
// load generator and checks what it writes.
func TestRunnerEndToEnd(t *testing.T) {
	out := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := config{BinDir: peerBins(t), Out: out, Bench: self, Rows: "gnet,std,sub1",
		Subordinate: filepath.Join(t.TempDir(), "no-such-binary"),
		Workers:     2, Runs: 1, Duration: 300 * time.Millisecond, Conns: 4, ConnectConns: 2,
		Size: 32, Keys: 10, Depth: 4, Idle: 200, Settle: 10 * time.Millisecond,
		Node: "node", HAProxy: "haproxy", Command: "test"}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	if err := run(c, log, []string{fakeBenchEnv + "=1"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r results
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 3 || r.Rows[1].ID != "sub1" || r.Rows[1].Error == "" {
		t.Fatalf("rows: %+v (sub1 has no binary and must be reported unavailable)", r.Rows)
	}
	if len(r.Cells) != 2*4 {
		t.Fatalf("%d cells, want 8", len(r.Cells))
	}
	for _, cl := range r.Cells {
		if len(cl.Runs) != 1 || len(cl.Errors) != 0 {
			t.Fatalf("cell %s/%s: %d runs, errors %v", cl.Row, cl.Workload, len(cl.Runs), cl.Errors)
		}
		if cl.Median.RPS <= 0 || cl.Median.Errors != 0 {
			t.Fatalf("cell %s/%s: median %+v", cl.Row, cl.Workload, cl.Median)
		}
		if cl.Runs[0].ServerProcs < 1 {
			t.Fatalf("cell %s/%s: server tree not found", cl.Row, cl.Workload)
		}
	}
	if len(r.Idle) != 2 {
		t.Fatalf("idle: %+v", r.Idle)
	}
	for _, i := range r.Idle {
		if i.Error != "" || i.Conns != 200 || i.RSSAfter == 0 {
			t.Fatalf("idle: %+v", i)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "table.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| raw gnet, 1 loop |", "| Go net, goroutine per conn |", "Memory per idle connection", "not measured", "Command: `test`"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("table.md lacks %q:\n%s", want, md)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "results.csv")); err != nil {
		t.Error(err)
	}
}

// TestRunnerPinBoth runs the whole runner with -pin both on the Subordinate
// rows and the stand-in load generator: two complete sets of results, one
// pinned and one unpinned, and the summary of both.
func TestRunnerPinBoth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real multi-process servers")
	}
	out := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	server, client := "1", "0"
	if runtime.NumCPU() < 2 {
		server = "0"
	}
	bins := peerBins(t)
	c := config{BinDir: bins, Out: out, Bench: self, Rows: "sub1,subN,subN-relay", Workloads: "pingpong,connect0",
		Subordinate: filepath.Join(bins, "subordinate"), Pin: "both", ServerCPUs: server, ClientCPUs: client,
		Workers: 2, Runs: 1, Duration: 300 * time.Millisecond, Conns: 4, ConnectConns: 2,
		Size: 32, Keys: 10, Depth: 4, Idle: 100, IdleRuns: 2, Settle: 10 * time.Millisecond,
		Node: "node", HAProxy: "haproxy", Command: "test"}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	if err := run(c, log, []string{fakeBenchEnv + "=1"}); err != nil {
		t.Fatal(err)
	}
	for _, pin := range []string{"pinned", "unpinned"} {
		b, err := os.ReadFile(filepath.Join(out, pin, "results.json"))
		if err != nil {
			t.Fatal(err)
		}
		var r results
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Pin != pin || (pin == "unpinned") != (r.Machine.Pinning == "none") {
			t.Errorf("%s: pin %q, pinning %q", pin, r.Pin, r.Machine.Pinning)
		}
		if len(r.Cells) != 3*2 {
			t.Fatalf("%s: %d cells, want 6", pin, len(r.Cells))
		}
		for _, cl := range r.Cells {
			if len(cl.Runs) != 1 || cl.Median.RPS <= 0 {
				t.Errorf("%s: cell %s/%s: %+v %v", pin, cl.Row, cl.Workload, cl.Median, cl.Errors)
			}
		}
		if len(r.Idle) != 3 {
			t.Fatalf("%s: idle %+v", pin, r.Idle)
		}
		for _, i := range r.Idle {
			if i.Error != "" || len(i.Runs) != 2 {
				t.Errorf("%s: idle %s: %+v, want 2 measurements", pin, i.Row, i)
			}
		}
		for _, f := range []string{"results.csv", "table.md", "issue9.md"} {
			if _, err := os.Stat(filepath.Join(out, pin, f)); err != nil {
				t.Error(err)
			}
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "table.md"))
	if err != nil {
		t.Fatal(err)
	}
	summary, err := os.ReadFile(filepath.Join(out, "issue9.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| figure | target | pinned | unpinned |",
		"| server CPU per request, ping-pong: handoff ÷ 1 worker | ≤ 1.1 | ",
		"| pinned | connect per request, close by reset (SO_LINGER 0), CPU µs | relay |",
		"| unpinned | idle memory, bytes | handoff |",
	} {
		if !strings.Contains(string(summary), want) {
			t.Errorf("issue9.md lacks %q:\n%s", want, summary)
		}
	}
	if !strings.HasPrefix(string(md), string(summary)) || !strings.HasPrefix(string(summary), "### Issue 9 targets") {
		t.Errorf("table.md does not start with the summary:\n%s", md)
	}
	pinned := strings.Index(string(md), "\n### Pinned: servers on CPU "+server+", clients on CPU "+client)
	unpinned := strings.Index(string(md), "\n### Unpinned: no CPU affinity")
	if pinned < 0 || unpinned < pinned || !strings.Contains(string(md)[unpinned:], "| Subordinate, N workers, relay |") {
		t.Errorf("table.md lacks the pinned then the unpinned tables:\n%s", md)
	}
	if _, err := os.Stat(filepath.Join(out, "results.json")); err == nil {
		t.Error("results.json at the top of a -pin both run: it belongs in pinned/ and unpinned/")
	}
}

func TestParseStat(t *testing.T) {
	line := "4242 (a (weird) name) S 17 4242 4242 0 -1 4194560 100 0 0 0 123 45 0 0 20 0 3 0 99 1000 50 18446744073709551615"
	st, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.pid != 4242 || st.ppid != 17 || st.utime != 123 || st.stime != 45 {
		t.Fatalf("%+v", st)
	}
	if _, err := parseStat([]byte("12 (x) S 1")); err == nil {
		t.Fatal("short stat accepted")
	}
}

// TestUsageOfFindsChildren checks the tree walk counts a child process.
func TestUsageOfFindsChildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		u, err := usageOf([]int{cmd.Process.Pid})
		if err != nil {
			t.Fatal(err)
		}
		if u.Procs == 2 && u.RSSBytes > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tree of sh: %+v, want 2 processes", u)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := usageOf([]int{1 << 30}); err == nil {
		t.Fatal("usage of a missing process succeeded")
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestParseBenchOutput(t *testing.T) {
	out := "progress...\n{\"mode\":\"pingpong\",\"requests\":10,\"rps\":5,\"duration_s\":2,\"p99_us\":7,\"errors\":{\"read\":1},\"error_total\":1}\n"
	r, err := parseBenchOutput([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 10 || r.P99us != 7 || r.Errors["read"] != 1 {
		t.Fatalf("%+v", r)
	}
	if _, err := parseBenchOutput([]byte("no json here\n")); err == nil {
		t.Fatal("garbage accepted")
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
