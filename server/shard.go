package server

import (
	"errors"
	"log/slog"
	"time"

	"github.com/subordinate/subordinate/internal/gnetx"
)

// ErrShardNotRunning is returned by Shard.Run when the shard's event loop
// has not started yet or has stopped.
var ErrShardNotRunning = errors.New("server: shard event loop not running")

// Shard is the shard a worker process serves: its index among Count
// shards, its logger, and a way back to its event loop.
type Shard struct {
	index, count int
	log          *slog.Logger
	eng          *gnetx.Engine
	running      chan struct{} // closed once the loop runs
	rt           *routed
}

// Index returns the shard's index, 0 <= Index < Count.
func (s *Shard) Index() int { return s.index }

// Count returns the number of shards.
func (s *Shard) Count() int { return s.count }

// Node returns the index of the cluster node the shard belongs to (0
// outside a cluster); see docs/CLUSTER.md.
func (s *Shard) Node() int {
	if s.rt == nil {
		return 0
	}
	return s.rt.self
}

// Nodes returns the number of nodes of the cluster (1 outside a
// cluster). Every node runs Count shards.
func (s *Shard) Nodes() int {
	if s.rt == nil {
		return 1
	}
	return s.rt.nnodes
}

// Logger returns the shard's logger (its lines carry "shard" and "pid").
func (s *Shard) Logger() *slog.Logger { return s.log }

// Run queues fn to run on the shard's event loop, where every Handler
// method runs, and returns at once. It is safe to call from any goroutine;
// it is how background work (a timer, a query) hands its result back to
// the handler without locks. It returns ErrShardNotRunning if the loop has
// not started or has stopped; fn may also not run if the loop stops after
// Run returned.
//
// A panic in fn is recovered, logged with its stack and counted, and the
// loop goes on, unless Config.CrashOnPanic is set (see Handler).
func (s *Shard) Run(fn func()) error {
	return s.run(s.rt.guard(fn))
}

// run is Run for the runtime's own functions: a panic in them is a bug of
// the runtime and is not recovered (the handler methods they call recover
// their own, see routed.call).
func (s *Shard) run(fn func()) error {
	select {
	case <-s.running:
	default:
		return ErrShardNotRunning
	}
	if err := s.eng.Run(fn); err != nil {
		return ErrShardNotRunning
	}
	return nil
}

// Timer is a timer made by Shard.AfterFunc.
type Timer struct {
	t       *time.Timer
	stopped bool // loop only
}

// Stop prevents the timer's function from running. Call it on the loop:
// there it is exact, even when the timer has fired and the function is
// queued. It reports whether it stopped the function from running.
func (t *Timer) Stop() bool {
	if t.stopped {
		return false
	}
	t.stopped = true
	t.t.Stop()
	return true
}

// AfterFunc runs fn on the shard's event loop after d. It may be called
// from any goroutine; Stop the returned Timer on the loop. A panic in fn
// is handled as in Run.
func (s *Shard) AfterFunc(d time.Duration, fn func()) *Timer {
	return s.afterFunc(d, s.rt.guard(fn))
}

// afterFunc is AfterFunc for the runtime's own functions, as run is.
func (s *Shard) afterFunc(d time.Duration, fn func()) *Timer {
	t := &Timer{}
	t.t = time.AfterFunc(d, func() {
		_ = s.run(func() {
			if !t.stopped {
				t.stopped = true
				fn()
			}
		})
	})
	return t
}
