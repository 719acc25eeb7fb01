package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/gnetx"
	"github.com/subordinate/subordinate/internal/mesh"
	"github.com/subordinate/subordinate/shard"
)

func init() { newShardRuntime = newRoutedRuntime }

// routed is the shard runtime of a worker: one gnet event loop that
// accepts on the master's listeners, reads each connection's preamble,
// and serves the connection with the Handler when this shard owns its key
// or forwards it to the owner over the mesh otherwise; and, for the
// connections other workers forward here, the mesh streams.
//
// The accepting side of a forwarded connection leaves the loop: its socket
// is duplicated, gnet closes its own descriptor (no FIN is sent while the
// duplicate is open), and two goroutines relay bytes between the socket
// and the smux stream (mesh.Relay). gnet always reads and has no pause;
// Go's runtime poller gives the relay real backpressure and TCP
// half-close for free.
type routed struct {
	info    *shardInfo
	shard   *Shard
	eng     *gnetx.Engine
	mesh    *mesh.Mesh
	handler Handler
	log     *slog.Logger

	enc          frame.Encoding
	limit        int
	writeTimeout time.Duration
	pool         sync.Pool // *pconn

	tlsConfig  *tls.Config // nil without tls:// listeners
	tlsLn      []bool      // by listener index: terminate TLS
	bootErr    error
	forwarding atomic.Int64 // connections served off the loop: relays, TLS
	stopped    chan struct{}
	stopOnce   sync.Once

	// Loop only.
	active   int // connections before their preamble and open Conns
	draining bool
	refuse   bool // draining where the listeners could not be removed
}

// pconn is the per-connection state of a gnet connection.
type pconn struct {
	dec      frame.Decoder
	timer    *time.Timer
	gen      uint64
	conn     *Conn // once the preamble is read and the shard owns the key
	detached bool  // forwarded: the socket left gnet
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
	}
	var lns []gnetx.Listener
	for _, l := range info.Listeners {
		gl := gnetx.Listener{FD: l.FD}
		if l.Network == "unix" {
			gl.Addr = &net.UnixAddr{Name: l.Address, Net: "unix"}
		} else if ta, err := net.ResolveTCPAddr("tcp", l.Address); err == nil {
			gl.Addr = ta
		}
		lns = append(lns, gl)
	}
	for _, l := range info.Listeners {
		a, err := ParseListenURL(l.URL)
		r.tlsLn = append(r.tlsLn, err == nil && a.TLS)
		if err == nil && a.TLS && r.tlsConfig == nil {
			if r.tlsConfig, err = info.Config.TLS.Build(); err != nil {
				closeShardFiles(info)
				return nil, err
			}
		}
	}
	r.eng = gnetx.New(gnetx.Config{Listeners: lns, Logger: info.Logger})
	r.shard = &Shard{index: info.Index, count: info.Count, log: info.Logger, eng: r.eng, running: make(chan struct{})}
	r.mesh, err = mesh.NewMesh(info.Index, info.Count, mcfg, r.onStream, info.Logger)
	if err != nil {
		closeShardFiles(info)
		return nil, fmt.Errorf("mesh: %w", err)
	}
	r.mesh.OnDown(func(peer int, err error) {
		r.log.Warn("mesh link down", "peer", peer, "err", err)
	})
	r.pool.New = func() any { return new(pconn) }
	return r, nil
}

// closeShardFiles closes the descriptors of a shard that will not run.
func closeShardFiles(info *shardInfo) {
	for _, l := range info.Listeners {
		_ = os.NewFile(uintptr(l.FD), "listener").Close()
	}
	for _, f := range info.Peers {
		_ = f.Close()
	}
}

// Serve implements shardRuntime.
func (r *routed) Serve(ready func()) error {
	defer r.stopOnce.Do(func() { close(r.stopped) })
	defer r.mesh.Close()
	for peer, f := range r.info.Peers {
		r.SetPeer(peer, f)
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
func (r *routed) SetPeer(peer int, link *os.File) {
	conn, err := net.FileConn(link)
	link.Close()
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
	if r.shard.Run(func() {
		r.draining = true
		if err := r.eng.StopAccepting(); err != nil {
			r.log.Warn("cannot stop accepting; refusing new connections instead", "err", err)
			r.refuse = true
		}
		r.maybeDrained()
	}) != nil {
		return
	}
	time.AfterFunc(time.Until(deadline), r.eng.Shutdown)
}

// Stop implements shardRuntime.
func (r *routed) Stop() { r.eng.Shutdown() }

// maybeDrained stops the loop once a drain has nothing left to wait for.
func (r *routed) maybeDrained() {
	if r.draining && r.active == 0 && r.forwarding.Load() == 0 {
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
	h, err := r.info.Factory(r.shard)
	if err != nil {
		r.bootErr = fmt.Errorf("handler: %w", err)
		return gnet.Shutdown
	}
	r.handler = h
	return gnet.None
}

// OnShutdown implements gnet.EventHandler.
func (r *routed) OnShutdown(gnet.Engine) {}

// OnTick implements gnet.EventHandler.
func (r *routed) OnTick() (time.Duration, gnet.Action) { return time.Hour, gnet.None }

// OnOpen starts reading a new connection's preamble.
func (r *routed) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	if r.refuse {
		return frame.AppendError(nil, "server is draining"), gnet.Close
	}
	if r.tlsConfig != nil && r.isTLS(gc) {
		return r.acceptTLS(gc)
	}
	pc := r.pool.Get().(*pconn)
	if err := pc.dec.Init(r.enc, r.info.Config.MaxKey); err != nil {
		return frame.AppendError(nil, frame.Reason(err)), gnet.Close
	}
	pc.gen++
	gen := pc.gen
	gc.SetContext(pc)
	r.active++
	pc.timer = time.AfterFunc(r.info.Config.PreambleTimeout, func() {
		_ = r.shard.Run(func() {
			if gc.Context() == pc && pc.gen == gen && pc.conn == nil && !pc.detached {
				r.refuseConn(gc, "preamble timeout")
				_ = gc.Close()
			}
		})
	})
	return nil, gnet.None
}

// OnTraffic reads the preamble, then routes; for a local connection it
// gives the bytes to the handler.
func (r *routed) OnTraffic(gc gnet.Conn) gnet.Action {
	pc, ok := gc.Context().(*pconn)
	if !ok || pc.detached {
		return gnet.Close
	}
	if c := pc.conn; c != nil {
		return r.data(c)
	}
	buf, _ := gc.Peek(-1)
	n, done, err := pc.dec.Feed(buf)
	if n > 0 {
		_, _ = gc.Discard(n)
	}
	if err != nil {
		return r.refuseConn(gc, frame.Reason(err))
	}
	if !done {
		return gnet.None
	}
	pc.timer.Stop()
	p := pc.dec.Preamble()
	var (
		owner int
		key   []byte
	)
	if p.Direct {
		if err := frame.VerifyDirect(r.info.Secret, r.info.Count, p.Shard, p.Token); err != nil {
			return r.refuseConn(gc, frame.Reason(err))
		}
		owner = int(p.Shard)
	} else {
		key = append([]byte(nil), p.Key...)
		owner = shard.Owner(key, r.info.Count)
	}
	if owner != r.info.Index {
		return r.forward(gc, pc, key, p.Direct, owner)
	}
	c := &Conn{rt: r, key: key, direct: p.Direct, via: r.info.Index, remote: gc.RemoteAddr(), gc: gc}
	pc.conn = c
	c.opening = true
	r.handler.OnOpen(c)
	c.opening = false
	if c.hijacked {
		pc.conn, pc.detached = nil, true
		return gnet.Close // the hijacker's duplicate keeps the socket
	}
	if c.closing || gc.InboundBuffered() == 0 {
		return gnet.None
	}
	return r.data(c)
}

// data gives a local connection's bytes to the handler and enforces the
// read buffer limit: gnet cannot stop reading, so a handler that does not
// consume makes the connection close.
func (r *routed) data(c *Conn) gnet.Action {
	if c.closing {
		_, _ = c.gc.Discard(c.gc.InboundBuffered())
		return gnet.None
	}
	r.handler.OnData(c)
	if !c.closing && c.gc != nil && c.gc.InboundBuffered() > r.limit {
		_, _ = c.gc.Write(frame.AppendError(nil, "read buffer limit reached"))
		c.abort(ErrInputLimit)
	}
	return gnet.None
}

// refuseConn answers one -ERR line and closes.
func (r *routed) refuseConn(gc gnet.Conn, reason string) gnet.Action {
	r.log.Info("refused a connection", "remote", gc.RemoteAddr(), "reason", reason)
	_, _ = gc.Write(frame.AppendError(nil, reason))
	return gnet.Close
}

// OnClose ends a gnet connection: a local Conn whose client shut down its
// write side gets OnEOF first and may live on, written from a goroutine.
func (r *routed) OnClose(gc gnet.Conn, err error) gnet.Action {
	pc, ok := gc.Context().(*pconn)
	if !ok {
		return gnet.None
	}
	gc.SetContext(nil)
	pc.timer.Stop()
	c := pc.conn
	pc.conn, pc.detached = nil, false
	pc.dec.Reset()
	r.pool.Put(pc)
	if c == nil {
		r.active--
		r.maybeDrained()
		return gnet.None
	}
	if !c.closing && errors.Is(err, io.EOF) {
		c.eof = true
		r.handler.OnEOF(c)
		if !c.closing && r.keepAfterEOF(c) {
			return gnet.None // the Conn lives on as a stream
		}
	}
	if c.closing {
		err = c.abortErr
	}
	c.gc = nil
	r.closed(c, err)
	return gnet.None
}

// keepAfterEOF keeps a half-closed local connection open for the handler
// to write its reply later: gnet closes its descriptor on EOF, so the
// socket is duplicated first and written from a goroutine.
func (r *routed) keepAfterEOF(c *Conn) bool {
	_ = c.LocalAddr()
	fd, err := c.gc.Dup()
	if err != nil {
		r.log.Warn("cannot keep a half-closed connection", "err", err)
		return false
	}
	f := os.NewFile(uintptr(fd), "client")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		r.log.Warn("cannot keep a half-closed connection", "err", err)
		return false
	}
	c.gc = nil
	c.st = newStream(c, nc)
	c.st.started = true // nothing more to read
	return true
}

// closed runs OnClose for c once, on the loop.
func (r *routed) closed(c *Conn, err error) {
	if c.closed {
		return
	}
	c.closed = true
	r.handler.OnClose(c, err)
	r.active--
	r.maybeDrained()
}

// queueClosed runs closed from the loop's queue, so that a handler's
// Close never calls its OnClose from inside another handler method.
func (r *routed) queueClosed(c *Conn, err error) {
	_ = r.shard.Run(func() { r.closed(c, err) })
}

// printable renders a key for a log line.
func printable(key []byte) string {
	const max = 64
	if len(key) > max {
		return strconv.Quote(string(key[:max])) + "..."
	}
	return strconv.Quote(string(key))
}
