//go:build unix

package harness

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/bench"
)

// These tests run the harness's process machinery with a stand-in server
// of the same shape as server.Serve (echobench runs the real one): a master that binds the
// listener and re-executes the test binary as a worker, passing the
// listening socket down; the worker serves echo after a line preamble.
// On SIGTERM the stand-in master exits WITHOUT stopping its worker, so
// the test proves that Close still leaves no process behind.
const envTestWorker = "HARNESS_TEST_WORKER"

func TestMain(m *testing.M) {
	mainWith(m, func() bool { return os.Getenv(envTestWorker) != "" }, standIn)
}

func standIn(c childConfig) error {
	if os.Getenv("HARNESS_TEST_FAIL") != "" {
		return errors.New("told to fail")
	}
	if os.Getenv(envTestWorker) != "" {
		ln, err := net.FileListener(os.NewFile(3, "listener"))
		if err != nil {
			return err
		}
		return serveEcho(ln)
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	w := exec.Command(exe)
	w.Env = append(os.Environ(), envTestWorker+"=1")
	w.ExtraFiles = []*os.File{f}
	w.Stderr = os.Stderr
	if err := w.Start(); err != nil {
		return err
	}
	fmt.Printf("worker pid %d\n", w.Process.Pid)
	_ = ln.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	return nil // the worker is left running on purpose
}

func serveEcho(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			if _, err := br.ReadSlice('\n'); err != nil {
				return
			}
			_, _ = br.WriteTo(c)
		}()
	}
}

var workerPID = regexp.MustCompile(`worker pid (\d+)`)

func TestStartRunClose(t *testing.T) {
	var master, worker int
	t.Run("serve", func(t *testing.T) {
		srv := Start(t, Options{Workers: 1})
		master = srv.cmd.Process.Pid
		deadline := time.Now().Add(10 * time.Second)
		for worker == 0 {
			if m := workerPID.FindStringSubmatch(srv.Output()); m != nil {
				worker, _ = strconv.Atoi(m[1])
			} else if time.Now().After(deadline) {
				t.Fatalf("no worker pid in %q", srv.Output())
			} else {
				time.Sleep(10 * time.Millisecond)
			}
		}
		var res *bench.Result
		br := testing.Benchmark(func(b *testing.B) {
			res = Run(b, srv, bench.Config{Conns: 2, Size: 64, Keys: 10})
		})
		if br.N == 0 || res == nil || res.Requests != int64(br.N) || res.ErrorTotal() != 0 {
			t.Fatalf("benchmark: N %d, result %+v", br.N, res)
		}
		for _, k := range []string{"req/s", "p50-µs", "p99-µs", "p99.9-µs", "max-µs"} {
			if br.Extra[k] <= 0 {
				t.Errorf("metric %s = %v", k, br.Extra[k])
			}
		}
	})
	// The subtest's Cleanup has closed the server: both processes are gone.
	for _, pid := range []int{master, worker} {
		deadline := time.Now().Add(10 * time.Second)
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still alive after Close", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// alive reports whether pid runs (a zombie waiting for an init that does
// not reap counts as gone).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !os.IsNotExist(err)
	}
	// The state follows the command name in parentheses.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

func TestStartFailure(t *testing.T) {
	t.Setenv("HARNESS_TEST_FAIL", "1")
	_, err := start(Options{StartTimeout: 20 * time.Second})
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "told to fail") {
		t.Fatalf("start of a failing server: %v", err)
	}
}
