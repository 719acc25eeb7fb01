package bench

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// runOK runs cfg and fails the test on a config error.
func runOK(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkClean checks that exactly want requests were counted, measured and
// never failed.
func checkClean(t *testing.T, res *Result, want int64) {
	t.Helper()
	if res.Requests != want {
		t.Errorf("requests = %d, want %d", res.Requests, want)
	}
	if got := res.Latency.TotalCount(); got != want {
		t.Errorf("histogram holds %d values, want %d", got, want)
	}
	if n := res.ErrorTotal(); n != 0 {
		t.Errorf("errors: %v", res.Errors)
	}
	if res.Duration <= 0 || res.RPS() <= 0 || res.Percentile(50) <= 0 || res.Max() < res.Percentile(99) {
		t.Errorf("implausible result: duration %v rps %v p50 %v p99 %v max %v",
			res.Duration, res.RPS(), res.Percentile(50), res.Percentile(99), res.Max())
	}
}

func TestModes(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"pingpong", Config{Mode: PingPong, Conns: 4, Size: 100}},
		{"pingpong-large", Config{Mode: PingPong, Conns: 2, Size: 200 << 10}},
		{"pipeline", Config{Mode: Pipeline, Depth: 8, Conns: 3, Size: 64}},
		{"pipeline-large", Config{Mode: Pipeline, Depth: 4, Conns: 2, Size: 300 << 10}},
		{"connect", Config{Mode: Connect, Conns: 4, Size: 32}},
		{"connect-linger0", Config{Mode: Connect, Conns: 4, Size: 32, Linger0: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startEcho(t, "tcp", "127.0.0.1:0", nil, nil)
			cfg := tc.cfg
			cfg.Addr = srv.addr()
			cfg.Requests = 600
			res := runOK(t, cfg)
			checkClean(t, res, 600)
			conns := 0
			for _, n := range srv.keyCounts() {
				conns += n
			}
			if cfg.Mode == Connect && conns < 600 {
				t.Errorf("server saw %d connections for 600 connect-mode requests", conns)
			}
		})
	}
}

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "echo.sock")
	srv := startEcho(t, "unix", path, nil, nil)
	res := runOK(t, Config{Addr: srv.addr(), Conns: 2, Requests: 200})
	checkClean(t, res, 200)
}

func TestDurationAndWarmup(t *testing.T) {
	srv := startEcho(t, "tcp", "127.0.0.1:0", nil, nil)
	var calls []Progress
	res := runOK(t, Config{Addr: srv.addr(), Conns: 2, Duration: 300 * time.Millisecond,
		Warmup: 100 * time.Millisecond, ProgressInterval: 50 * time.Millisecond,
		Progress: func(p Progress) { calls = append(calls, p) }})
	if res.Requests == 0 || res.ErrorTotal() != 0 {
		t.Fatalf("requests %d errors %v", res.Requests, res.Errors)
	}
	if res.Duration < 300*time.Millisecond {
		t.Errorf("measured %v, want at least the 300ms asked", res.Duration)
	}
	if len(calls) == 0 {
		t.Fatal("no progress call")
	}
	if !calls[0].Warmup || calls[0].Requests != 0 {
		t.Errorf("first progress call %+v: want warmup, no requests", calls[0])
	}
}

func TestZipfHotKey(t *testing.T) {
	srv := startEcho(t, "tcp", "127.0.0.1:0", nil, nil)
	res := runOK(t, Config{Addr: srv.addr(), Mode: Connect, Conns: 4, Requests: 2000,
		Keys: 100, Dist: Zipf, ZipfS: 1.5, Linger0: true})
	checkClean(t, res, 2000)
	counts := srv.keyCounts()
	hot := counts[KeyName(0)]
	for k, n := range counts {
		if k != KeyName(0) && n >= hot {
			t.Errorf("key %s drawn %d times, the hottest k0 only %d", k, n, hot)
		}
	}
	// With s = 1.5 over 100 keys, k0 carries about 40% of the draws.
	if hot < 2000/5 {
		t.Errorf("k0 drawn %d times of 2000: not dominant", hot)
	}

	uni := startEcho(t, "tcp", "127.0.0.1:0", nil, nil)
	runOK(t, Config{Addr: uni.addr(), Mode: Connect, Conns: 4, Requests: 2000, Keys: 10, Linger0: true})
	for k, n := range uni.keyCounts() {
		if n > 2000/4 {
			t.Errorf("uniform: key %s drawn %d times of 2000 over 10 keys", k, n)
		}
	}
}

func TestMismatchCounted(t *testing.T) {
	for _, mode := range []Mode{PingPong, Pipeline, Connect} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := startEcho(t, "tcp", "127.0.0.1:0", nil, func(s *echoServer) { s.corrupt = true })
			res := runOK(t, Config{Addr: srv.addr(), Mode: mode, Conns: 2, Duration: 200 * time.Millisecond})
			// The server flips one byte per read: in pipeline mode one read
			// holds several requests and only one is corrupted.
			if mode != Pipeline && res.Requests != 0 {
				t.Errorf("%d corrupted requests counted as good", res.Requests)
			}
			if res.Errors[KindMismatch] == 0 {
				t.Errorf("no mismatch counted: %v", res.Errors)
			}
		})
	}
}

func TestErrPreambleCounted(t *testing.T) {
	for _, tc := range []struct {
		mode Mode
		size int
	}{{PingPong, 4}, {PingPong, 1000}, {Pipeline, 64}, {Connect, 64}} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			srv := startEcho(t, "tcp", "127.0.0.1:0", nil, func(s *echoServer) { s.errRep = true })
			res := runOK(t, Config{Addr: srv.addr(), Mode: tc.mode, Size: tc.size, Conns: 2, Duration: 200 * time.Millisecond})
			if res.Requests != 0 || res.Errors[KindPreamble] == 0 {
				t.Errorf("requests %d, errors %v: want only preamble errors", res.Requests, res.Errors)
			}
		})
	}
}

func TestTimeoutCounted(t *testing.T) {
	srv := startEcho(t, "tcp", "127.0.0.1:0", nil, func(s *echoServer) { s.mute = true })
	res := runOK(t, Config{Addr: srv.addr(), Conns: 2, Timeout: 50 * time.Millisecond, Duration: 300 * time.Millisecond})
	if res.Requests != 0 || res.Errors[KindTimeout] == 0 {
		t.Errorf("requests %d, errors %v: want timeouts", res.Requests, res.Errors)
	}
}

func TestConnectRefused(t *testing.T) {
	srv := startEcho(t, "tcp", "127.0.0.1:0", nil, nil)
	addr := srv.addr()
	_ = srv.ln.Close()
	res := runOK(t, Config{Addr: addr, Conns: 2, Duration: 100 * time.Millisecond})
	if res.Requests != 0 || res.Errors[KindConnect] == 0 {
		t.Errorf("requests %d, errors %v: want connect errors", res.Requests, res.Errors)
	}
}

func TestCancelNoLeak(t *testing.T) {
	srv := startEcho(t, "tcp", "127.0.0.1:0", nil, nil)
	before := runtime.NumGoroutine()
	for _, mode := range []Mode{PingPong, Pipeline, Connect} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan *Result)
		go func() {
			res, _ := Run(ctx, Config{Addr: srv.addr(), Mode: mode, Conns: 8, Duration: time.Hour,
				Progress: func(Progress) {}})
			done <- res
		}()
		time.Sleep(100 * time.Millisecond)
		cancel()
		select {
		case res := <-done:
			if res.ErrorTotal() != 0 {
				t.Errorf("%v: cancel counted as errors: %v", mode, res.Errors)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%v: Run did not return after cancel", mode)
		}
	}
	// The server's goroutines for closed connections end on their own:
	// wait for them, then compare.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestVerify(t *testing.T) {
	if err := DefaultConfig().Verify(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, cfg := range map[string]Config{
		"conns":        {Conns: -1},
		"size":         {Size: MaxSize + 1},
		"depth":        {Mode: Pipeline, Depth: MaxDepth + 1},
		"depth-mode":   {Mode: PingPong, Depth: 4},
		"in-flight":    {Mode: Pipeline, Depth: 4096, Size: 1 << 20},
		"zipf":         {Dist: Zipf, ZipfS: 1},
		"direct":       {Frame: FrameDirect, Shards: 2},
		"direct-shard": {Frame: FrameDirect, Secret: []byte("s")},
		"secret-line":  {Secret: []byte("s")},
		"mode":         {Mode: Mode(9)},
		"frame":        {Frame: Frame(9)},
	} {
		err := cfg.Verify()
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Verify() = %v, want ErrInvalidConfig", name, err)
		}
		if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Run error = %v", name, err)
		}
	}
	for _, s := range []string{"pingpong", "pipeline", "connect"} {
		if m, err := ParseMode(s); err != nil || m.String() != s {
			t.Errorf("ParseMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseFrame("xml"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("ParseFrame(xml) = %v", err)
	}
}
