package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/gnetx"
	"github.com/subordinate/subordinate/internal/handoff"
	"github.com/subordinate/subordinate/internal/keysrc"
	"github.com/subordinate/subordinate/internal/mesh"
	"github.com/subordinate/subordinate/internal/nodelink"
	"github.com/subordinate/subordinate/internal/proxyproto"
)

func init() { newShardRuntime = newRoutedRuntime }

// routed is the shard runtime of a worker: one gnet event loop that
// accepts on the master's listeners, reads each connection's preamble,
// and serves the connection with the Handler when this shard owns its key
// or sends it to the owner otherwise (dispatch.go): the socket itself over
// a hand-off link (handoff.go), or its bytes over a mesh stream
// (relay.go). It also adopts the sockets other workers hand it, and serves
// the streams they relay to it.
type routed struct {
	info  *shardInfo
	shard *Shard
	eng   *gnetx.Engine
	mesh  *mesh.Mesh
	links *handoff.Links // nil when Config.Forward is relay
	// nodes are the links to the same worker of the other nodes of a
	// cluster (cluster.go); nil outside a cluster. self is this node's
	// index, nnodes the node count (1 outside a cluster).
	nodes        *nodelink.Links
	self, nnodes int
	handler      Handler
	log          *slog.Logger
	// downs are the mesh links down in their grace (meshDown).
	downMu sync.Mutex
	downs  map[*meshDown]struct{}
	// refusals rate-limits the per-connection refusal lines (ratelog.go).
	refusals *rateLog

	enc frame.Encoding
	// src is where keys come from (Config.KeyFrom), defaultKey the key of
	// a connection that has none (nil: refused), trusted the networks a
	// PROXY header may come from (nil: none is read).
	src          keysrc.Source
	defaultKey   []byte
	trusted      *proxyproto.Trusted
	limit        int
	writeTimeout time.Duration
	pool         sync.Pool // *pconn

	tlsConfig *tls.Config // nil without tls:// listeners; reads certs
	// spliceTLS: a TLS connection terminated here for another worker is
	// spliced to it, not relayed over the mesh (Config.ForwardTLS).
	spliceTLS bool
	// sessionTLS: such a connection is handed off with its TLS 1.3
	// session first, when it can be (tls_session.go).
	sessionTLS bool
	certs      *certStore // what tlsConfig serves, reloaded on SIGHUP (tls_reload.go)
	tlsLn      []bool     // by listener index: terminate TLS
	bootErr    error
	stopped    chan struct{}
	stopOnce   sync.Once

	// crashOnPanic is Config.CrashOnPanic: a panic in handler code is
	// not recovered (panic.go).
	crashOnPanic bool
	// panics counts the panics of handler code recovered since the shard
	// started: in a Handler method (its connection was closed) or in a
	// function queued with Shard.Run or Shard.AfterFunc. Read it from any
	// goroutine; the admin endpoint exports it
	// (subordinate_handler_panics_total).
	panics atomic.Uint64

	// pending counts what a drain waits for (see hold); drainAsked is set
	// once a drain is asked for, so that release looks at the count.
	pending    atomic.Int64
	drainAsked atomic.Bool
	// lingerUntil (UnixNano; 0: none) keeps a drained shard up for its
	// peers' sake (linger.go).
	lingerUntil atomic.Int64
	// maxConns is the most client sockets the worker holds
	// (Config.MaxConns, or derived). socks counts them: a gnet connection
	// from OnOpen to OnClose, a duplicate taken off gnet (relay, TLS,
	// hijack, half-closed, a hand-off waiting for its owner) until it is
	// closed. It only grows on the loop; it shrinks anywhere.
	maxConns int
	socks    atomic.Int64
	// busy counts the connections refused because the worker was full;
	// idleClosed those closed by their idle timeout. Read them from any
	// goroutine. The admin endpoint exports idleClosed
	// (subordinate_idle_closed_total); busy refusals are counted there
	// with the others (countRefusal).
	busy       atomic.Uint64
	idleClosed atomic.Uint64

	// fds pauses accepting before the descriptor table fills up
	// (fdguard.go).
	fds fdGuard

	// adoptions are the handed-off sockets queued for the loop
	// (adopt.go).
	adoptions *adoptions

	// lstats are the loop's counters (loop only), gstats those kept off
	// the loop too (atomics): stats.go.
	lstats loopStats
	gstats goStats

	// Loop only.
	offLoop  map[*Conn]struct{} // open Conns not backed by a gnet connection
	conns    int                // Conns made and not yet closed or dropped
	msgBuf   []byte             // hand-off messages are built here
	draining bool
	refuse   bool // draining where the listeners could not be removed
	stopping bool // the loop is closing every connection

	// tlsScratch is what local TLS Conns decrypt into during an
	// OnTraffic (tls_loop.go); loop only.
	tlsScratch []byte

	// The idle sweep (limits.go), loop only: the Conns with an idle
	// timeout, the sweep's coarse clock (time since epoch, read once per
	// sweep), its period and its timer (nil when it does not run).
	idleConns   map[*Conn]struct{}
	epoch       time.Time
	clock       time.Duration
	sweepPeriod time.Duration
	sweepTimer  *Timer
}

// pconn is the per-connection state of a gnet connection.
type pconn struct {
	// The key's readers (keyfrom.go): the one of Config.KeyFrom is used.
	dec   frame.Decoder
	http  keysrc.HTTPReader
	hello keysrc.HelloReader
	stage uint8 // stageKey or stageProxy
	// tls: the client speaks TLS, not terminated by this worker yet (a
	// tls:// listener).
	tls bool
	// client and local are the addresses a PROXY header declared.
	client, local netip.AddrPort
	timer         *time.Timer // the preamble deadline; nil for a handed-off socket
	gen           uint64
	conn          *Conn // once the preamble is read and the shard owns the key
	detached      bool  // the socket left gnet: handed off, relayed or hijacked
	// fed is the transport of a TLS handshake running on a goroutine,
	// which OnTraffic feeds (tls_fed.go); nil once the loop has the
	// connection back.
	fed *tlsFed
}

func newRoutedRuntime(info *shardInfo) (shardRuntime, error) {
	enc, err := frame.ParseEncoding(info.Config.Frame)
	if err != nil {
		closeShardFiles(info)
		return nil, fmt.Errorf("frame: %w", err)
	}
	mcfg := mesh.DefaultMeshConfig()
	r := &routed{
		info:         info,
		log:          info.Logger,
		enc:          enc,
		limit:        info.Config.ConnBufferLimit,
		writeTimeout: mcfg.WriteTimeout,
		stopped:      make(chan struct{}),
		crashOnPanic: info.Config.CrashOnPanic,
		maxConns:     maxConns(&info.Config),
		refusals:     newRateLog(info.Logger, refusalBurst, refusalInterval),
		downs:        make(map[*meshDown]struct{}),
		self:         info.Members.Self,
		nnodes:       max(1, info.Members.Size()),
	}
	r.fds.init(info.Config.Workers - 1)
	if err := r.initKeyFrom(); err != nil {
		closeShardFiles(info)
		return nil, fmt.Errorf("key source: %w", err)
	}
	var lns []gnetx.Listener
	for _, l := range info.Listeners {
		gl := gnetx.Listener{FD: l.FD}
		if l.Network == "unix" {
			gl.Addr = &net.UnixAddr{Name: l.Address, Net: "unix"}
		} else {
			if ta, err := net.ResolveTCPAddr("tcp", l.Address); err == nil {
				gl.Addr = ta
			}
			if d := info.Config.KeepAlive; d > 0 {
				if err := listenerKeepAlive(l.FD, d); err != nil {
					info.Logger.Warn("client sockets get no TCP keep-alive", "listener", l.URL, "err", err)
				}
			}
		}
		lns = append(lns, gl)
	}
	for _, l := range info.Listeners {
		a, err := ParseListenURL(l.URL)
		r.tlsLn = append(r.tlsLn, err == nil && a.TLS)
		if err == nil && a.TLS && r.tlsConfig == nil {
			if r.certs, err = newCertStore(info.Config.TLS); err != nil {
				closeShardFiles(info)
				return nil, err
			}
			r.tlsConfig = r.certs.server
		}
	}
	r.eng = gnetx.New(gnetx.Config{Listeners: lns, Logger: info.Logger})
	r.shard = &Shard{index: info.Index, count: info.Count, log: info.Logger, eng: r.eng, running: make(chan struct{}), rt: r}
	r.mesh, err = mesh.NewMesh(info.Index, info.Count, mcfg, r.onStream, info.Logger)
	if err != nil {
		closeShardFiles(info)
		return nil, fmt.Errorf("mesh: %w", err)
	}
	r.mesh.OnDown(r.meshDown)
	if info.Config.Forward == ForwardHandoff {
		r.links = handoff.NewLinks(info.Count)
		r.adoptions = newAdoptions()
	}
	if r.tlsConfig != nil && info.Count > 1 {
		cpus := usableCPUs()
		r.spliceTLS = spliceForwardedTLS(&info.Config, cpus)
		r.sessionTLS = handOffTLSSessions(&info.Config)
		how := "relay over the mesh"
		if r.spliceTLS {
			how = "splice"
		}
		if r.sessionTLS {
			how = "hand-off with the TLS 1.3 session, else " + how
		}
		info.Logger.Info("forwarded TLS connections", "how", how, "forward_tls", info.Config.ForwardTLS, "cpus", cpus, "workers", info.Count)
	}
	r.offLoop = make(map[*Conn]struct{})
	r.pool.New = r.newPconn
	return r, nil
}

// meshDownGrace is how long a worker that serves waits before it calls a
// peer's mesh link going down a failure (WARN): the master drains every
// worker at once, and a peer with nothing to wait for may be gone before
// this worker has read its own drain message.
const meshDownGrace = 2 * time.Second

// meshDown logs a mesh link that died: INFO once the shard drains or
// stops (its peers go away too), a warning if it still serves
// meshDownGrace later.
func (r *routed) meshDown(peer int, err error) {
	if r.mesh.Quiet() {
		r.log.Info("mesh link down", "peer", peer, "err", err)
		return
	}
	r.downMu.Lock()
	defer r.downMu.Unlock()
	if r.downs == nil { // the shard stopped
		r.log.Info("mesh link down", "peer", peer, "err", err)
		return
	}
	d := &meshDown{peer: peer, err: err}
	d.t = time.AfterFunc(meshDownGrace, func() {
		r.downMu.Lock()
		_, ok := r.downs[d]
		delete(r.downs, d)
		r.downMu.Unlock()
		if !ok {
			return // logged by stopDowns
		}
		lv := slog.LevelWarn
		if r.mesh.Quiet() {
			lv = slog.LevelInfo
		}
		r.log.Log(context.Background(), lv, "mesh link down", "peer", peer, "err", err)
	})
	r.downs[d] = struct{}{}
}

// meshDown is a mesh link down not logged yet.
type meshDown struct {
	t    *time.Timer
	peer int
	err  error
}

// stopDowns logs, at INFO, the links down still in their grace when the
// shard stops, and stops their timers.
func (r *routed) stopDowns() {
	r.downMu.Lock()
	defer r.downMu.Unlock()
	for d := range r.downs {
		d.t.Stop()
		r.log.Info("mesh link down", "peer", d.peer, "err", d.err)
	}
	r.downs = nil
}

// closeShardFiles closes the descriptors of a shard that will not run.
func closeShardFiles(info *shardInfo) {
	for _, l := range info.Listeners {
		_ = os.NewFile(uintptr(l.FD), "listener").Close()
	}
	for _, l := range info.Peers {
		l.Close()
	}
	if info.Cluster != nil {
		_ = info.Cluster.Close()
	}
}

// Serve implements shardRuntime.
func (r *routed) Serve(ready func()) error {
	defer r.stopOnce.Do(func() { close(r.stopped) })
	defer r.refusals.close()
	defer r.stopDowns()
	defer r.mesh.Close()
	if r.links != nil {
		defer r.links.Close()
		defer r.abandonAdoptions() // the loop has stopped
	}
	for peer, l := range r.info.Peers {
		r.SetPeer(peer, l)
	}
	if err := r.startNodes(); err != nil {
		return fmt.Errorf("shard %d: %w", r.info.Index, err)
	}
	if r.nodes != nil {
		defer r.nodes.Close()
	}
	if err := r.eng.Start(r); err != nil {
		if r.bootErr != nil {
			return r.bootErr
		}
		return fmt.Errorf("shard %d: %w", r.info.Index, err)
	}
	close(r.shard.running)
	ready()
	<-r.eng.Done()
	if r.bootErr != nil {
		return r.bootErr
	}
	if err := r.eng.Err(); !errors.Is(err, gnetx.ErrStopped) {
		return err
	}
	return nil
}

// SetPeer implements shardRuntime.
func (r *routed) SetPeer(peer int, links peerFiles) {
	if links.Handoff != nil {
		if r.links == nil {
			links.Handoff.Close()
		} else if l, err := handoff.NewLink(links.Handoff); err != nil {
			r.log.Error("hand-off link unusable", "peer", peer, "err", err)
		} else {
			r.links.Set(peer, l)
			go r.receiveHandoffs(peer, l)
		}
	}
	conn, err := net.FileConn(links.Mesh)
	links.Mesh.Close()
	if err != nil {
		r.log.Error("mesh link unusable", "peer", peer, "err", err)
		return
	}
	if err := r.mesh.SetLink(peer, conn); err != nil {
		r.log.Error("mesh link refused", "peer", peer, "err", err)
	}
}

// Drain implements shardRuntime.
func (r *routed) Drain(deadline time.Time) {
	r.drainAsked.Store(true)
	r.mesh.Quiesce()
	if r.nodes != nil {
		// New connections from other nodes wait for this worker's
		// successor (cluster.go); those relayed here go on.
		r.nodes.Drain()
	}
	if r.shard.run(func() {
		r.draining = true
		r.log.Info("drain: waiting for connections", "pending", r.pending.Load(), "conns", r.conns, "deadline", time.Until(deadline).Round(time.Millisecond))
		if err := r.eng.StopAccepting(); err != nil {
			r.log.Warn("cannot stop accepting; refusing new connections instead", "err", err)
			r.refuse = true
		}
		r.maybeDrained()
	}) != nil {
		return
	}
	time.AfterFunc(time.Until(deadline), r.drainDeadline)
}

// drainDeadline stops a drain that has not finished by its deadline.
func (r *routed) drainDeadline() { r.closeAll("drain deadline: closing the connections left") }

// Stop implements shardRuntime: every open Conn is closed, each with its
// OnClose, and the loop stops.
func (r *routed) Stop() { r.closeAll("stopping: closing the connections left") }

// closeAll closes every connection and stops the loop, logging msg with
// how many it closes (Conns open, and everything a drain waits for,
// connections before their preamble included) when there are any.
func (r *routed) closeAll(msg string) {
	r.mesh.Quiesce()
	_ = r.shard.run(func() {
		if n := r.pending.Load(); n > 0 {
			r.log.Info(msg, "pending", n, "conns", r.conns)
		}
		r.closeOffLoop()
	})
	r.eng.Shutdown() // queued behind closeOffLoop: gnet then closes its own
}

// hold counts one thing a drain waits for: a gnet connection (from OnOpen
// to OnClose), an open Conn (until its OnClose), or work off the loop (a
// relay, a TLS handshake, a hand-off waiting for its owner). release ends
// it, from any goroutine.
func (r *routed) hold() { r.pending.Add(1) }

func (r *routed) release() {
	if r.pending.Add(-1) == 0 && r.drainAsked.Load() {
		_ = r.shard.run(r.maybeDrained)
	}
}

// maybeDrained stops the loop once a drain has nothing left to wait for.
func (r *routed) maybeDrained() {
	if r.draining && r.pending.Load() == 0 && !r.lingering() {
		r.eng.Shutdown()
	}
}

// OnBoot makes the shard's handler before any connection, on the
// goroutine that then becomes the event loop.
func (r *routed) OnBoot(gnet.Engine) gnet.Action {
	if r.info.Factory == nil {
		r.bootErr = errors.New("server: no handler factory")
		return gnet.Shutdown
	}
	h, err := r.makeHandler()
	if err != nil {
		r.bootErr = fmt.Errorf("handler: %w", err)
		return gnet.Shutdown
	}
	r.handler = h
	return gnet.None
}

// makeHandler calls the factory: a panic in it is a startup failure, an
// error (logged with its stack), whatever Config.CrashOnPanic says.
func (r *routed) makeHandler() (h Handler, err error) {
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("handler factory panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			h, err = nil, fmt.Errorf("factory panicked: %v", v)
		}
	}()
	return r.info.Factory(r.shard)
}

// OnShutdown implements gnet.EventHandler.
func (r *routed) OnShutdown(gnet.Engine) {}

// OnTick implements gnet.EventHandler.
func (r *routed) OnTick() (time.Duration, gnet.Action) { return time.Hour, gnet.None }

// OnOpen starts reading a new connection's preamble, or opens a socket
// another worker handed off.
func (r *routed) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	short := r.checkFDs()
	switch a := gc.Context().(type) {
	case *arrival:
		return r.openArrival(gc, a, short)
	case *spliceEnd:
		return r.openSpliceEnd(gc, a)
	}
	r.lstats.accepted++
	tlsLn := r.tlsConfig != nil && r.isTLS(gc)
	if r.refuse {
		r.countRefusal("server is draining")
		return appendRefusal(nil, r.form(tlsLn), "server is draining", 0), gnet.Close
	}
	if short || r.full() {
		return r.refuseBusy(gc, tlsLn)
	}
	return r.acceptKeyed(gc, tlsLn)
}

// OnTraffic reads the preamble, then dispatches; for a local connection
// it gives the bytes to the handler.
func (r *routed) OnTraffic(gc gnet.Conn) gnet.Action {
	pc, ok := gc.Context().(*pconn)
	if !ok || pc.detached {
		return gnet.Close
	}
	if c := pc.conn; c != nil {
		if c.tl != nil {
			return r.tlsTraffic(c)
		}
		return r.data(c)
	}
	if pc.fed != nil {
		return r.fedTraffic(gc, pc)
	}
	return r.readKey(gc, pc)
}

// data gives a local connection's bytes to the handler and enforces the
// read buffer limit: gnet cannot stop reading, so a handler that does not
// consume makes the connection close.
func (r *routed) data(c *Conn) gnet.Action {
	if c.closing {
		_, _ = c.gc.Discard(c.gc.InboundBuffered())
		return gnet.None
	}
	c.active = r.clock
	r.countIn(c)
	if len(c.pre) > 0 && c.gc.InboundBuffered() > 0 {
		// Bytes the accepting worker read come first: the new ones
		// queue behind them until the handler has consumed them.
		b, _ := c.gc.Next(-1)
		c.pre = append(c.pre, b...)
		c.inSeen = 0
	}
	r.call(c, "OnData", Handler.OnData)
	if !c.closing && c.gc != nil && c.Buffered() > r.limit {
		_, _ = c.gc.Write(frame.AppendError(nil, "read buffer limit reached"))
		c.abort(ErrInputLimit)
	}
	return gnet.None
}

// refuseConn refuses a connection before its handler has it: one -ERR
// line, or what its key source's clients understand (refusal.go), and
// closes.
func (r *routed) refuseConn(gc gnet.Conn, reason string) gnet.Action {
	return r.refuseConnStatus(gc, reason, 0)
}

// refuseConnStatus is refuseConn with the HTTP status an HTTP client gets
// (0: derived from the reason).
func (r *routed) refuseConnStatus(gc gnet.Conn, reason string, status int) gnet.Action {
	rawTLS := false
	if pc, ok := gc.Context().(*pconn); ok {
		rawTLS = pc.tls
	}
	r.logRefusal(gc.RemoteAddr(), reason)
	_, _ = gc.Write(appendRefusal(nil, r.form(rawTLS), reason, status))
	return gnet.Close
}

// logRefusal logs one refused connection, rate-limited per reason
// (ratelog.go), from the loop or any goroutine.
func (r *routed) logRefusal(remote net.Addr, reason string) {
	r.countRefusal(reason)
	r.refusals.Info("refused a connection", "reason", reason, "remote", remote)
}

// OnClose ends a gnet connection: a local Conn whose client shut down its
// write side gets OnEOF first and may live on, written from a goroutine.
func (r *routed) OnClose(gc gnet.Conn, err error) gnet.Action {
	pc, ok := gc.Context().(*pconn)
	if !ok {
		return gnet.None
	}
	gc.SetContext(nil)
	if pc.timer != nil {
		pc.timer.Stop()
		pc.timer = nil
	}
	if pc.fed != nil {
		pc.fed.end(err) // the handshake's goroutine reads the end
	}
	c := pc.conn
	pc.reset()
	r.pool.Put(pc)
	r.socks.Add(-1)
	defer r.release() // the gnet connection
	if c == nil {
		return gnet.None
	}
	if err == nil && r.stopping {
		err = ErrServerClosed
	}
	if errors.Is(err, io.EOF) {
		if !c.closing {
			if !c.eof { // a TLS Conn may have had it at close_notify
				c.eof = true
				r.call(c, "OnEOF", Handler.OnEOF)
			}
			if !c.closing && r.keepAfterEOF(c) {
				return gnet.None // the Conn lives on as a stream
			}
		}
		// Closed by the handler (in OnEOF, or before the client's EOF
		// came) with a reply not all sent: gnet would drop its end.
		// The socket is kept until the stream has sent it.
		if c.closing && c.abortErr == nil && c.gc.OutboundBuffered() > 0 && r.keepAfterEOF(c) {
			c.st.close()
			r.closed(c, nil)
			return gnet.None
		}
	}
	if c.closing {
		err = c.abortErr
	}
	c.gc, c.tl = nil, nil
	r.closed(c, err)
	return gnet.None
}

// keepAfterEOF keeps a half-closed local connection open for the handler
// to write its reply later: gnet closes its descriptor on EOF, so the
// socket is detached first and written from a goroutine. What gnet had
// not sent yet goes first, from the Conn's copy: gnet is made to forget
// the socket, so that its own last write cannot drop or reorder it.
func (r *routed) keepAfterEOF(c *Conn) bool {
	if c.tl != nil {
		return r.tlsKeepAfterEOF(c)
	}
	_ = c.LocalAddr()
	pending := c.gc.OutboundBuffered()
	nc, rest, err := r.detach(c.gc)
	if err != nil {
		r.log.Warn("cannot keep a half-closed connection", "err", err)
		return false
	}
	if pending > 0 {
		if err := r.eng.Forget(c.gc.Fd()); err != nil {
			// gnet sends what the socket takes and drops the rest.
			r.log.Warn("a half-closed connection may lose the end of its reply", "err", err)
			pending = 0
		}
	}
	unsent := c.unsent.take(pending)
	c.gc = nil
	c.sock = true
	c.st = newStream(c, nc)
	c.st.in = append(c.takePre(), rest...)
	c.st.started = true // nothing more to read
	r.offLoop[c] = struct{}{}
	if len(unsent) > 0 {
		_, _ = c.st.write(unsent)
	}
	return true
}

// printable renders a key for a log line.
func printable(key []byte) string {
	const max = 64
	if len(key) > max {
		return strconv.Quote(string(key[:max])) + "..."
	}
	return strconv.Quote(string(key))
}
