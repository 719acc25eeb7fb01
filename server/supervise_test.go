package server_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/ctl"
	"github.com/subordinate/subordinate/internal/proctest"
)

var crashworker string

func TestMain(m *testing.M) {
	proctest.Main(m, "github.com/subordinate/subordinate/server/testdata/crashworker", &crashworker)
}

// TestGiveUp: a shard whose worker keeps failing is restarted with the
// same index and a doubling back-off, capped, then the master stops
// everything and exits non-zero: whether the worker fails before it is
// ready ("early") or after it became ready and served for less than
// MaxRestartBackoff ("late").
func TestGiveUp(t *testing.T) {
	for _, mode := range []string{"early", "late"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			p := proctest.Start(t, crashworker, []string{"CRASHWORKER=" + mode})
			st := p.WaitExit(60 * time.Second)
			if st.ExitCode() != 1 || !strings.Contains(p.Stderr(), "a shard keeps failing; stopped") {
				t.Fatalf("exit %v, want 1 and the give-up error\n%s", st, p.Stderr())
			}
			gaveUp := p.WaitLog(time.Second, 1, func(l proctest.Line) bool {
				return strings.HasPrefix(l.Msg(), "SHARD KEEPS FAILING")
			})
			shard := gaveUp.Int("shard")
			if gaveUp.Int("failures_in_a_row") != 4 {
				t.Errorf("gave up after %d failures, want MaxRestarts+1 = 4", gaveUp.Int("failures_in_a_row"))
			}
			// Each restart of that shard keeps its index; back-offs
			// double up to the cap: 10ms, 20ms, 40ms.
			var backoffs []time.Duration
			starts, ready := 0, 0
			for _, l := range p.Logs() {
				if l.Int("shard") != shard {
					continue
				}
				switch l.Msg() {
				case "restarting shard after back-off":
					backoffs = append(backoffs, l.Duration("backoff"))
				case "worker started":
					starts++
				case "worker ready":
					ready++
				}
			}
			if fmt.Sprint(backoffs) != "[10ms 20ms 40ms]" {
				t.Errorf("back-offs of shard %d: %v, want [10ms 20ms 40ms]", shard, backoffs)
			}
			if starts != 4 {
				t.Errorf("shard %d started %d times, want 4", shard, starts)
			}
			// "late" is about workers that were ready: every start of
			// the shard became ready before it failed.
			wantReady := map[string]int{"early": 0, "late": 4}[mode]
			if ready != wantReady {
				t.Errorf("shard %d became ready %d times, want %d", shard, ready, wantReady)
			}
		})
	}
}

// TestWorkerOfAnotherProtocol: the master checks the version of a worker's
// first message. A worker that refuses the init (it speaks another
// version) is logged with its version and reason; one whose ready carries
// another version (none: from before versions) is logged and killed.
// Neither is ever taken as ready, and the shard fails until the master
// gives up.
func TestWorkerOfAnotherProtocol(t *testing.T) {
	for _, mode := range []string{"refuse", "oldproto"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			p := proctest.Start(t, crashworker, []string{"CRASHWORKER=" + mode})
			st := p.WaitExit(60 * time.Second)
			if st.ExitCode() != 1 || !strings.Contains(p.Stderr(), "a shard keeps failing; stopped") {
				t.Fatalf("exit %v, want 1 and the give-up error\n%s", st, p.Stderr())
			}
			starts, complaints, killed := 0, 0, 0
			for _, l := range p.Logs() {
				switch {
				case l.Msg() == "worker started":
					starts++
				case l.Msg() == "worker ready":
					t.Errorf("a worker of another protocol was taken as ready: %v", l)
				case mode == "refuse" && l.Is("worker refused to run: it speaks another control protocol (is its binary the master's?)",
					"worker_protocol", ctl.ProtocolVersion+1, "protocol", ctl.ProtocolVersion, "reason", "crashworker refuses"):
					complaints++
				case mode == "oldproto" && l.Is("worker speaks another control protocol (is its binary the master's?); killing it",
					"worker_protocol", 0, "protocol", ctl.ProtocolVersion, "message", "ready"):
					complaints++
				case (l.Msg() == "worker died" || l.Msg() == "worker exited") && l.Str("cause") == "killed by signal SIGKILL":
					killed++ // "exited" once the master gave up
				}
			}
			if starts == 0 || complaints != starts {
				t.Errorf("%d workers started, %d logged as speaking another protocol: want one each\n%s", starts, complaints, p.Stderr())
			}
			if mode == "oldproto" && killed != starts {
				t.Errorf("%d workers started, %d killed: want each killed", starts, killed)
			}
		})
	}
}

// TestHealthyFailuresReset: a worker that became ready and served for at
// least MaxRestartBackoff before it failed was healthy: its failure count
// is reset, so it is restarted after the first back-off each time and the
// master never gives up, however many times that happens.
func TestHealthyFailuresReset(t *testing.T) {
	t.Parallel()
	p := proctest.Start(t, crashworker, []string{"CRASHWORKER=healthy"})
	// Twice MaxRestarts+1 failures of one shard: without the reset the
	// master would have given up at the fourth.
	const deaths = 8
	restarted := func(l proctest.Line) bool {
		return l.Msg() == "restarting shard after back-off" && l.Int("shard") == 0
	}
	p.WaitLog(60*time.Second, deaths, restarted)
	if p.Exited() || strings.Contains(p.Stderr(), "SHARD KEEPS FAILING") {
		t.Fatalf("the master gave up on healthy workers\n%s", p.Stderr())
	}
	restarts, ready := 0, 0
	for _, l := range p.Logs() {
		if l.Int("shard") != 0 {
			continue
		}
		switch l.Msg() {
		case "restarting shard after back-off":
			restarts++
			if l.Int("failures_in_a_row") != 1 || l.Duration("backoff") != 10*time.Millisecond {
				t.Errorf("restart after %d failures in a row, back-off %v; want 1 and 10ms (count reset)",
					l.Int("failures_in_a_row"), l.Duration("backoff"))
			}
		case "worker ready":
			ready++
		}
	}
	if restarts < deaths || ready < deaths {
		t.Errorf("shard 0: %d restarts, %d times ready, want at least %d each", restarts, ready, deaths)
	}
	p.Signal(syscall.SIGTERM)
	if st := p.WaitExit(30 * time.Second); st.ExitCode() != 0 {
		t.Errorf("after SIGTERM the master exited %v, want 0\n%s", st, p.Stderr())
	}
}
