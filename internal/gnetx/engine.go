package gnetx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	gerrors "github.com/panjf2000/gnet/v2/pkg/errors"
)

// Listener is one listening socket of an Engine: either a socket to adopt
// (FD >= 0) or an address the engine binds itself with SO_REUSEPORT.
type Listener struct {
	// FD is a listening stream socket (TCP or Unix) to adopt, or -1. The
	// engine takes it over: once Start returns, FD is closed (the engine
	// accepts on a duplicate of it).
	FD int
	// Addr is the address of the adopted socket, reported by Engine.Addr.
	Addr net.Addr
	// Bind is a gnet address, "tcp://HOST:PORT" with a non-zero port, that
	// the engine binds itself with SO_REUSEPORT when FD is -1.
	Bind string
}

// Config configures Start.
type Config struct {
	// Listeners are the sockets to accept on. At least one.
	Listeners []Listener
	// Logger receives gnet's logs (see Logger). Nil discards them.
	Logger *slog.Logger
	// Tick forwards gnet's OnTick to the handler. The engine always runs
	// gnet's ticker (it needs its first tick to learn the loop); without
	// Tick the handler's OnTick is never called.
	Tick bool
	// Options are further gnet options. Start appends its own, which win:
	// one event loop (multicore off), SO_REUSEPORT on, the ticker on, a
	// load balancer other than round robin (so that Register is safe from
	// any goroutine) and the logger.
	Options []gnet.Option
}

// Errors of the package.
var (
	// ErrNoListeners is returned by Start without listeners.
	ErrNoListeners = errors.New("gnetx: no listeners")
	// ErrStopped is returned when the engine stopped, or stopped during
	// Start (the handler's OnBoot returned gnet.Shutdown).
	ErrStopped = errors.New("gnetx: engine stopped")
	// ErrStopAcceptUnsupported is returned by StopAccepting where the
	// listeners cannot be taken out of the loop (Linux without /proc).
	// The caller falls back to refusing new connections itself.
	ErrStopAcceptUnsupported = errors.New("gnetx: cannot stop accepting on this system")
)

// Engine is a running gnet engine with one event loop. See the package
// documentation.
type Engine struct {
	cfg     Config
	lns     []*listenerState
	byLocal map[string]int // gnet's Conn.LocalAddr().String() -> listener index

	eng  gnet.Engine    // set in OnBoot
	loop gnet.EventLoop // set when the anchor opens, before ready closes

	anchorPeer *os.File
	tickOnce   sync.Once
	ep         atomic.Int64 // gnet's epoll descriptor, once found (Linux)

	ready chan struct{}
	done  chan struct{}

	mu  sync.Mutex
	err error
}

type listenerState struct {
	l        Listener
	reserved int    // reservation socket holding the placeholder port, or -1
	match    string // address gnet's listener is bound to (getsockname)
	key      string // what gnet's Conn.LocalAddr().String() gives
	fd       int    // gnet's listener descriptor (after adoption: our socket)
	addr     net.Addr
	stopped  bool
	paused   *pausedListener // set while PauseAccepting holds it out of the loop
}

// anchorTag marks the internal connection that gives the engine its
// gnet.EventLoop. The handler never sees it.
type anchorTag struct{}

// New returns an Engine for cfg, to be started with Start. A handler that
// needs the Engine in its callbacks is given it before Start.
func New(cfg Config) *Engine {
	return &Engine{
		cfg:     cfg,
		byLocal: make(map[string]int),
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Start runs handler h on one gnet event loop accepting on the
// configured listeners, and returns once the loop runs and accepts. It
// returns an error if a listener cannot be adopted or bound. The
// descriptors of Config.Listeners are closed when Start returns, whatever
// the outcome. Start may be called once.
func (e *Engine) Start(h gnet.EventHandler) error {
	cfg := e.cfg
	defer e.closeListenerFDs()
	if len(cfg.Listeners) == 0 {
		return ErrNoListeners
	}
	addrs := make([]string, len(cfg.Listeners))
	for i, l := range cfg.Listeners {
		st := &listenerState{l: l, reserved: -1, fd: -1}
		e.lns = append(e.lns, st)
		if l.FD >= 0 {
			if err := checkListening(l.FD); err != nil {
				e.closeReservations()
				return fmt.Errorf("gnetx: listener %d: %w", i, err)
			}
			rfd, port, err := reservePort()
			if err != nil {
				e.closeReservations()
				return err
			}
			st.reserved = rfd
			st.match = fmt.Sprintf("127.0.0.1:%d", port)
			st.key = st.match
			st.addr = l.Addr
			addrs[i] = "tcp://" + st.match
			continue
		}
		network, host, ok := strings.Cut(l.Bind, "://")
		if !ok || !strings.HasPrefix(network, "tcp") {
			e.closeReservations()
			return fmt.Errorf("gnetx: bind address %q: want tcp://HOST:PORT", l.Bind)
		}
		ta, err := net.ResolveTCPAddr(network, host)
		if err != nil || ta.Port == 0 {
			e.closeReservations()
			return fmt.Errorf("gnetx: bind address %q: want tcp://HOST:PORT with a port", l.Bind)
		}
		st.key = ta.String()
		addrs[i] = l.Bind
	}

	opts := append(append([]gnet.Option(nil), cfg.Options...),
		gnet.WithMulticore(false),
		gnet.WithNumEventLoop(1),
		gnet.WithReusePort(true),
		gnet.WithTicker(true),
		gnet.WithLoadBalancing(gnet.LeastConnections),
		gnet.WithLogger(Logger{L: cfg.Logger}),
	)
	go func() {
		err := gnet.Rotate(&wrapper{EventHandler: h, e: e}, addrs, opts...)
		e.finish(err)
	}()
	select {
	case <-e.ready:
		_, _ = e.epoll() // before any listener can be paused or stopped
		return nil
	case <-e.done:
		return e.Err()
	}
}

// closeListenerFDs closes the sockets handed to Start: adopted ones are
// duplicated by then, the others are not wanted.
func (e *Engine) closeListenerFDs() {
	for _, l := range e.cfg.Listeners {
		if l.FD >= 0 {
			syscall.Close(l.FD)
		}
	}
}

func (e *Engine) closeReservations() {
	for _, st := range e.lns {
		if st.reserved >= 0 {
			syscall.Close(st.reserved)
			st.reserved = -1
		}
	}
}

func (e *Engine) fail(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
}

func (e *Engine) finish(err error) {
	if err != nil {
		e.fail(fmt.Errorf("gnetx: %w", err))
	}
	e.fail(ErrStopped)
	e.closeReservations()
	if e.anchorPeer != nil {
		e.anchorPeer.Close()
	}
	close(e.done)
}

// boot adopts the listeners. It runs in OnBoot: gnet has bound its
// listeners and not yet registered them with the poller.
func (e *Engine) boot(eng gnet.Engine) error {
	e.eng = eng
	for i, st := range e.lns {
		var fd int
		var err error
		if st.l.FD >= 0 {
			fd, err = findListener(st.match)
		} else {
			fd, err = findBound(eng, st.l.Bind)
		}
		if err != nil {
			return fmt.Errorf("gnetx: listener %d: %w", i, err)
		}
		st.fd = fd
		if st.l.FD >= 0 {
			if err := syscall.SetNonblock(st.l.FD, true); err != nil {
				return fmt.Errorf("gnetx: listener %d: set non-blocking: %w", i, err)
			}
			if err := dupOnto(st.l.FD, fd); err != nil {
				return fmt.Errorf("gnetx: listener %d: adopt: %w", i, err)
			}
		} else if st.addr, err = sockname(fd); err != nil {
			return fmt.Errorf("gnetx: listener %d: %w", i, err)
		}
		e.byLocal[st.key] = i
	}
	e.closeReservations()
	return nil
}

// enrollAnchor registers one end of a socketpair with the loop; its OnOpen
// gives the engine the loop's gnet.EventLoop. It runs on gnet's ticker
// goroutine, which gnet starts after the loop is set up.
func (e *Engine) enrollAnchor() {
	err := func() error {
		a, b, err := socketpair()
		if err != nil {
			return err
		}
		e.anchorPeer = b
		c, err := net.FileConn(a)
		a.Close()
		if err != nil {
			return err
		}
		ctx := gnet.NewNetConnContext(gnet.NewContext(context.Background(), anchorTag{}), c)
		ch, err := e.eng.Register(ctx)
		if err != nil {
			c.Close()
			return err
		}
		go func() {
			if res := <-ch; res.Err != nil {
				e.fail(fmt.Errorf("gnetx: register the loop anchor: %w", res.Err))
				_ = e.eng.Stop(context.Background())
			}
		}()
		return nil
	}()
	if err != nil {
		e.fail(fmt.Errorf("gnetx: register the loop anchor: %w", err))
		go func() { _ = e.eng.Stop(context.Background()) }()
	}
}

// Gnet returns the gnet engine. Its CountConnections counts one
// connection more than the handler sees: the engine's internal anchor,
// which gives it the loop's gnet.EventLoop.
func (e *Engine) Gnet() gnet.Engine { return e.eng }

// Loop returns the engine's one event loop: its Execute runs a function
// on the loop from any goroutine.
func (e *Engine) Loop() gnet.EventLoop { return e.loop }

// Run queues fn to run on the loop. It returns ErrStopped if the engine
// has stopped (fn will not run); fn may also never run when the engine
// stops after Run returned.
func (e *Engine) Run(fn func()) error {
	err := e.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		fn()
		return nil
	}))
	if err != nil {
		return ErrStopped
	}
	return nil
}

// Listener returns the index in Config.Listeners of the listener that
// accepted c, or -1 for a connection that was not accepted (registered).
func (e *Engine) Listener(c gnet.Conn) int {
	a := c.LocalAddr()
	if a == nil {
		return -1
	}
	if i, ok := e.byLocal[a.String()]; ok {
		return i
	}
	return -1
}

// Addr returns the address of listener i: Listener.Addr for an adopted
// socket, the bound address for one the engine bound.
func (e *Engine) Addr(i int) net.Addr { return e.lns[i].addr }

// LocalAddr returns the real local address of c (gnet's Conn.LocalAddr
// names the placeholder of an adopted listener). It costs a getsockname.
func (e *Engine) LocalAddr(c gnet.Conn) (net.Addr, error) { return sockname(c.Fd()) }

// StopAccepting takes every listener out of the loop: no connection is
// accepted any more, the open ones are served as before. This process
// lets go of the listening sockets; another process that holds them (the
// master, another worker) keeps them open and accepting.
//
// It must be called on the loop (from a handler callback or a function
// given to Run). It returns ErrStopAcceptUnsupported where that cannot be
// done, having changed nothing.
func (e *Engine) StopAccepting() error {
	for i, st := range e.lns {
		if st.stopped {
			continue
		}
		if st.paused != nil { // out of the loop already: only let it go
			if err := release(st.fd); err != nil {
				return fmt.Errorf("gnetx: stop accepting on listener %d: %w", i, err)
			}
			st.paused, st.stopped = nil, true
			continue
		}
		if err := stopAccept(st.fd); err != nil {
			if errors.Is(err, ErrStopAcceptUnsupported) {
				return err
			}
			return fmt.Errorf("gnetx: stop accepting on listener %d: %w", i, err)
		}
		st.stopped = true
	}
	return nil
}

// Shutdown asks the engine to stop: the loop closes every connection
// (OnClose is called for each) and exits. It does not wait; see Done.
func (e *Engine) Shutdown() {
	// An error means the engine is stopping already.
	_ = e.loop.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		return gerrors.ErrEngineShutdown
	}))
}

// Stop shuts the engine down and waits until it has stopped. It must not
// be called on the loop.
func (e *Engine) Stop() error {
	e.Shutdown()
	<-e.done
	if err := e.Err(); !errors.Is(err, ErrStopped) {
		return err
	}
	return nil
}

// Done is closed when the engine has stopped.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Err returns why the engine stopped: ErrStopped for a requested stop, or
// the error that stopped it. Nil while it runs.
func (e *Engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// wrapper is the gnet.EventHandler gnet sees: the handler, with OnBoot
// adopting the listeners first and the anchor connection kept from it.
type wrapper struct {
	gnet.EventHandler
	e *Engine
}

func isAnchor(c gnet.Conn) bool {
	_, ok := c.Context().(anchorTag)
	return ok
}

func (w *wrapper) OnBoot(eng gnet.Engine) gnet.Action {
	if err := w.e.boot(eng); err != nil {
		w.e.fail(err)
		return gnet.Shutdown
	}
	return w.EventHandler.OnBoot(eng)
}

func (w *wrapper) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if isAnchor(c) {
		if w.e.loop == nil {
			w.e.loop = c.EventLoop()
			close(w.e.ready)
		}
		return nil, gnet.None
	}
	return w.EventHandler.OnOpen(c)
}

func (w *wrapper) OnTraffic(c gnet.Conn) gnet.Action {
	if isAnchor(c) {
		_, _ = c.Discard(c.InboundBuffered())
		return gnet.None
	}
	return w.EventHandler.OnTraffic(c)
}

func (w *wrapper) OnClose(c gnet.Conn, err error) gnet.Action {
	if isAnchor(c) {
		return gnet.None
	}
	return w.EventHandler.OnClose(c, err)
}

func (w *wrapper) OnTick() (time.Duration, gnet.Action) {
	w.e.tickOnce.Do(w.e.enrollAnchor)
	if !w.e.cfg.Tick {
		return time.Hour, gnet.None
	}
	return w.EventHandler.OnTick()
}
