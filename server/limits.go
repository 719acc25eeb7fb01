package server

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

)

// ErrIdleTimeout is given to OnClose for a connection closed because no
// byte came from its client for its idle timeout (Config.IdleTimeout or
// Conn.SetIdleTimeout).
var ErrIdleTimeout = errors.New("server: idle timeout")

// Descriptors a worker keeps for itself when MaxConns is derived: see
// DefaultMaxConns.
const (
	fdReserve        = 64 // listeners, control channel, epoll, eventfd, logs, the Go runtime's own
	fdReservePerPeer = 4  // the mesh and hand-off links to a peer, and a spare for a hand-off in flight
)

// keepAliveCount is the number of unanswered keep-alive probes after
// which the kernel drops a connection, as Go's net sets it.
const keepAliveCount = 9

// DefaultMaxConns is the MaxConns a worker of a server of workers uses
// when Config.MaxConns is 0, given its descriptor limit (the soft
// RLIMIT_NOFILE, which the Go runtime raises to the hard limit at start):
// half of what is left once a reserve is kept for the process's own
// descriptors (64, and 4 per peer: the mesh and hand-off links). Half,
// because a connection may hold two descriptors for a moment: the
// duplicate that takes a socket off gnet (relay, TLS, hijack) until gnet
// closes its own, and a handed-off socket being registered with the
// owner's loop; and because a worker that runs out of descriptors cannot
// even accept to refuse. It is at least 1.
func DefaultMaxConns(fdLimit uint64, workers int) int {
	const most = 1 << 24 // an unlimited (RLIM_INFINITY) or absurd limit
	reserve := uint64(fdReserve + fdReservePerPeer*max(workers-1, 0))
	if fdLimit > most {
		fdLimit = most
	}
	if fdLimit <= reserve+2 {
		return 1
	}
	return int((fdLimit - reserve) / 2)
}

// maxConns returns the limit of the worker for cfg.
func maxConns(cfg *Config) int {
	if cfg.MaxConns > 0 {
		return cfg.MaxConns
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return DefaultMaxConns(1024, cfg.Workers)
	}
	return DefaultMaxConns(uint64(rl.Cur), cfg.Workers) //nolint:unconvert // int64 on some systems
}

// Busy returns the number of connections refused with "server busy"
// because the worker held MaxConns connections, since the shard started.
// The admin endpoint counts them in subordinate_refused_total{reason="busy"}.
func (r *routed) Busy() uint64 { return r.busy.Load() }

// full reports whether the worker holds as many client sockets as it may
// (Config.MaxConns). Sockets are only counted in on the loop, so the
// answer holds until the loop opens one more.
func (r *routed) full() bool { return r.socks.Load() >= int64(r.maxConns) }

// refuseBusy refuses a new connection, or one handed off to this worker,
// because it is full, in OnOpen.
func (r *routed) refuseBusy(gc gnet.Conn, tlsConn bool) ([]byte, gnet.Action) {
	r.busy.Add(1)
	r.logRefusal(gc.RemoteAddr(), "server busy") // rate-limited: a flood is summarised
	return appendRefusal(nil, r.form(tlsConn), "server busy", 0), gnet.Close
}

// listenerKeepAlive turns on TCP keep-alive, with period d, on a
// listening socket: every socket accepted from it inherits the options
// (Linux and the BSDs copy them from the listener), so a connection costs
// no system call for them. gnet sets them on listeners it binds, never on
// the master's sockets a worker adopts. Each worker sets the same values
// on the shared socket.
func listenerKeepAlive(fd int, d time.Duration) error {
	secs := int(d / time.Second)
	for _, o := range []struct{ level, opt, v int }{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, tcpKeepIdle, secs},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, keepAliveCount},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return fmt.Errorf("set TCP keep-alive on a listener: %w", err)
		}
	}
	return nil
}

// goKeepAlive is the keep-alive net.FileConn turns on (Go's default idle
// time and interval, with keepAliveCount probes).
const goKeepAlive = 15 * time.Second

// keepAliveConn sets TCP keep-alive as Config.KeepAlive says on a
// client socket turned into a net.Conn (net.FileConn turns keep-alive on
// with Go's defaults, whatever the socket had).
func (r *routed) keepAliveConn(nc net.Conn) {
	tc, ok := nc.(*net.TCPConn)
	d := r.info.Config.KeepAlive
	if !ok || d == goKeepAlive { // net.FileConn set exactly that
		return
	}
	if d <= 0 {
		_ = tc.SetKeepAlive(false)
		return
	}
	_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: d, Interval: d, Count: keepAliveCount})
}

// SetIdleTimeout sets the idle timeout of c: c is closed, with
// ErrIdleTimeout, once no byte has come from its client for d, counted
// from this call or the last byte, whichever is later (within the
// coarseness of Config.IdleTimeout). d <= 0 removes it. It overrides
// Config.IdleTimeout for c; a hijacked connection has none. Call it on
// the loop.
func (c *Conn) SetIdleTimeout(d time.Duration) {
	if c.closing || c.closed || c.hijacked {
		return
	}
	c.idleTimeout = max(d, 0)
	if d <= 0 {
		delete(c.rt.idleConns, c)
		return
	}
	c.rt.watchIdle(c)
}

// watchIdle adds c to the connections the idle sweep looks at, and
// starts the sweep, or makes it more frequent, as c's timeout needs.
func (r *routed) watchIdle(c *Conn) {
	if r.idleConns == nil {
		r.idleConns = make(map[*Conn]struct{})
		r.epoch = time.Now()
	}
	r.idleConns[c] = struct{}{}
	p := max(c.idleTimeout/4, time.Millisecond)
	if r.sweepTimer == nil || p < r.sweepPeriod {
		if r.sweepTimer != nil {
			r.sweepTimer.Stop()
		}
		r.sweepPeriod = p
		r.clock = time.Since(r.epoch)
		r.sweepTimer = r.shard.afterFunc(p, r.sweep)
	}
	c.active = r.clock
}

// sweep closes the watched connections idle for longer than their
// timeout, on the loop. r.clock moves only here, and data stamps a
// connection with it (no clock read per read): a stamp is at most one
// period old, so a connection is closed only once its stamp is older
// than its timeout plus one period.
func (r *routed) sweep() {
	r.sweepTimer = nil
	if r.stopping {
		return
	}
	r.clock = time.Since(r.epoch)
	for c := range r.idleConns {
		switch {
		case c.closing || c.closed || c.hijacked || c.idleTimeout <= 0:
			delete(r.idleConns, c)
		case r.clock-c.active > c.idleTimeout+r.sweepPeriod:
			delete(r.idleConns, c)
			r.idleClosed.Add(1)
			r.log.Debug("closing an idle connection", "remote", c.remote, "key", printable(c.key), "idle_timeout", c.idleTimeout)
			c.fail(ErrIdleTimeout)
		}
	}
	if len(r.idleConns) > 0 {
		r.sweepTimer = r.shard.afterFunc(r.sweepPeriod, r.sweep)
	}
}
