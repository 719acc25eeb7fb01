package server

import (
	"errors"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/subordinate/subordinate/internal/gnetx"
)

// The descriptor guard. gnet ends a worker's event loop when accept fails
// with anything but EAGAIN, EINTR, ECONNRESET or ECONNABORTED, so a worker
// whose descriptor table fills up (EMFILE) would drop every connection it
// holds. The guard never lets accept get there: after each connection the
// loop opens it estimates how many descriptors the process holds, counts
// them exactly when the estimate comes near the limit (and every
// fdRecount anyway, so that descriptors the handler opens are seen). With
// fewer than twice fdGuardReserve(peers) free, it refuses each new
// connection with "-ERR server busy" (a reply costs no descriptor kept);
// with fewer than the reserve free (the handler or connections in flight
// took them), it pauses accepting. The connections it holds are served
// on; other workers, which share the listening sockets, take the new
// ones. It looks again after a back-off that doubles from fdBackoffMin to
// fdBackoffMax, and resumes once twice the reserve is free.
//
// MaxConns (derived from the same limit by default) normally refuses
// connections long before the guard pauses: the guard is for a MaxConns
// set higher than the descriptors allow, for handlers that open
// descriptors of their own, and for a limit shared with other work.
const (
	fdRecount     = 10 * time.Millisecond
	fdRecountSlow = time.Second
	fdBackoffMin  = 10 * time.Millisecond
	fdBackoffMax  = time.Second
	// fdPauseLogEvery bounds the "accepting paused" lines: at most one
	// per interval, with the count of pauses since the last one.
	fdPauseLogEvery = 10 * time.Second
)

// fdGuardReserve is the number of free descriptors below which a worker
// with peers peers pauses accepting: room for the connections accepted in
// the loop's current round (one per listener), the duplicates and
// hand-offs of connections in flight, a peer's fresh links after a
// restart, and what the handler opens meanwhile.
func fdGuardReserve(peers int) int { return 32 + 4*peers }

// fdGuard is the state of the descriptor guard of one worker. Loop only,
// but for pauses.
type fdGuard struct {
	off     bool // pausing is not possible here, or the limit is not known
	limit   int  // RLIMIT_NOFILE (soft), read at start
	reserve int

	slow      bool  // counting reads a directory (Linux before 6.2): count less often
	last      int   // descriptors open at the last count
	lastSocks int64 // routed.socks at the last count
	at        time.Time

	paused  bool
	since   time.Time
	backoff time.Duration
	timer   *Timer

	logged   time.Time // of the last "accepting paused" line
	unlogged int       // pauses since that line

	// pauses counts the times accepting was paused since the shard
	// started; read it from any goroutine (a metric).
	pauses atomic.Uint64
}

// init sets the guard up for a worker with peers peers.
func (g *fdGuard) init(peers int) {
	g.reserve = fdGuardReserve(peers)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 || runtime.GOOS != "linux" {
		g.off = true // unknown or unlimited, or no way to pause (gnetx.ErrPauseUnsupported)
		return
	}
	g.limit = int(rl.Cur) //nolint:unconvert // int64 on some systems
	g.last, g.slow, _ = openDescriptors()
	g.at = time.Now()
}

// checkFDs is called on the loop after a connection was accepted or
// adopted. It reports whether the worker is short of descriptors: fewer
// than twice the reserve are free, and the new connection is to be
// refused ("-ERR server busy": the answer costs no descriptor, and it
// takes the connection out of the accept queue, where it would only
// wait). With fewer than the reserve free, it also pauses accepting.
func (r *routed) checkFDs() (short bool) {
	g := &r.fds
	if g.off || r.draining {
		return false
	}
	socks := r.socks.Load()
	// Each socket opened since the count may have brought another
	// descriptor with it (a duplicate, the handler's upstream).
	est := g.last + 2*int(max(socks-g.lastSocks, 0))
	now := time.Now()
	every := fdRecount
	if g.slow {
		every = fdRecountSlow
	}
	if est < g.limit-2*g.reserve && (g.slow || g.last < g.limit/2) && now.Sub(g.at) < every {
		return false
	}
	n, _, err := openDescriptors()
	if err != nil {
		g.off = true
		r.log.Warn("cannot count descriptors; accepting will not pause when they run out", "err", err)
		return false
	}
	g.last, g.lastSocks, g.at = n, socks, now
	if n < g.limit-2*g.reserve {
		return false
	}
	if n >= g.limit-g.reserve && !g.paused {
		r.pauseAccepting(n, socks)
	}
	return true
}

// pauseAccepting takes the listeners out of the loop, with n descriptors
// open, and arms the first look at them again.
func (r *routed) pauseAccepting(n int, socks int64) {
	g := &r.fds
	if err := r.eng.PauseAccepting(); err != nil {
		g.off = true
		if !errors.Is(err, gnetx.ErrPauseUnsupported) {
			r.log.Error("cannot pause accepting", "err", err)
		}
		return
	}
	now := time.Now()
	g.paused, g.since, g.backoff = true, now, fdBackoffMin
	g.pauses.Add(1)
	g.unlogged++
	if now.Sub(g.logged) >= fdPauseLogEvery {
		r.log.Warn("accepting paused: descriptors nearly exhausted; serving the open connections",
			"open", n, "limit", g.limit, "conns", socks, "pauses", g.unlogged)
		g.logged, g.unlogged = now, 0
	}
	g.timer = r.shard.afterFunc(g.backoff, r.retryAccept)
}

// retryAccept looks again at the descriptors of a paused worker, on the
// loop: it resumes accepting once twice the reserve is free, or waits
// again, twice as long.
func (r *routed) retryAccept() {
	g := &r.fds
	g.timer = nil
	if !g.paused {
		return
	}
	n, _, err := openDescriptors()
	if err == nil && n >= g.limit-2*g.reserve && !r.draining {
		g.backoff = min(2*g.backoff, fdBackoffMax)
		g.timer = r.shard.afterFunc(g.backoff, r.retryAccept)
		return
	}
	g.paused = false
	if r.draining {
		return // the drain has let the listeners go
	}
	if err := r.eng.ResumeAccepting(); err != nil {
		r.log.Error("cannot resume accepting", "err", err)
		return
	}
	g.last, g.lastSocks, g.at = n, r.socks.Load(), time.Now()
	r.log.Info("accepting resumed", "open", n, "limit", g.limit, "paused_for", time.Since(g.since).Round(time.Millisecond))
}

// openDescriptors returns the number of descriptors open in this process.
// Linux 6.2 and later give it as the size of /proc/self/fd, for a stat (4
// µs); otherwise the directory is read (slow: its cost grows with the
// count).
func openDescriptors() (n int, slow bool, err error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/fd", &st); err == nil && st.Size > 0 {
		return int(st.Size), false, nil
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, true, err
	}
	return len(ents) - 1, true, nil // less the one ReadDir opened
}
