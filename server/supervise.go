package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/subordinate/subordinate/internal/cluster"
	"github.com/subordinate/subordinate/internal/ctl"
	"github.com/subordinate/subordinate/internal/handoff"
)

// Timings of the supervisor that are not configurable.
const (
	// sendTimeout bounds a control message write to a worker.
	sendTimeout = 5 * time.Second
	// stopGrace is how long workers told to stop may take before the
	// master kills them.
	stopGrace = 3 * time.Second
	// readerGrace bounds how long the report of a worker's exit waits
	// for its control channel to reach EOF.
	readerGrace = time.Second
)

// ErrGaveUp is wrapped by the error Serve returns when a shard kept
// failing and the master stopped everything.
var ErrGaveUp = errors.New("a shard keeps failing; stopped")

// masterSignals are the signals a master handles (supervisor.signal).
var masterSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR2}

// supervisor runs the workers of a master: all its state is touched by
// the goroutine of run only; the helpers goroutines (process waiters,
// control readers, restart timers) report to it through events.
type supervisor struct {
	sigc    <-chan os.Signal // the master's signals (masterSignals), caught since it started
	cfg     Config
	cfgJSON []byte
	secret  []byte
	lns     []*masterListener
	clns    []*masterListener // cluster listeners, by worker; nil outside a cluster
	members cluster.Members   // the cluster's nodes, resolved; zero outside a cluster
	exe     *masterBinary     // what a worker runs: the master's own binary
	args    []string
	log     *slog.Logger
	admin   *adminServer // nil without Config.Admin

	spawn   *spawner
	workers []*workerProc
	events  chan event
	quit    chan struct{}

	state  supState
	result error            // what run returns
	kill   <-chan time.Time // when to SIGKILL the workers still alive

	// A binary upgrade (upgrade.go): the path SIGUSR2 runs, the one
	// under way (nil if none), whether one succeeded (this master
	// drains), the attempts so far, and what the helpers report.
	upgradePath string
	upg         *upgrade
	upgradeDone bool
	attempts    int
	upgEvents   chan upgradeEvent
	// onAllReady, if set, runs once when every worker is first ready (a
	// new master of an upgrade tells the old one).
	onAllReady func()

	// tickets are the TLS session ticket keys (nil without a tls://
	// listener), rotated when ticketTimer fires (tls_tickets.go).
	tickets     *ticketRing
	ticketTimer *time.Timer
}

type supState int

const (
	running  supState = iota
	draining          // first signal: workers drain
	stopping          // second signal, or giving up: workers stop now
)

// workerProc is one shard's worker process, across its restarts.
type workerProc struct {
	index    int
	gen      int // start count; events of an older start are ignored
	cmd      *exec.Cmd
	ctl      *ctl.Conn
	pid      int
	alive    bool // started and not reaped
	started  time.Time
	ready    time.Time // zero until the worker said ready
	failures int       // consecutive failures: they set the back-off
	unready  int       // consecutive starts that never became ready: they make the master give up
	restart  *time.Timer
	// everReady: a worker of this shard has been ready since the master
	// started (the admin endpoint's readiness).
	everReady bool
}

type eventKind int

const (
	evExited eventKind = iota
	evReady
	evRestart
)

type event struct {
	kind  eventKind
	index int
	gen   int
	state *os.ProcessState
	err   error
}

func (s *supervisor) post(ev event) {
	select {
	case s.events <- ev:
	case <-s.quit:
	}
}

func (s *supervisor) run() error {
	s.spawn = newSpawner()
	s.events = make(chan event)
	s.quit = make(chan struct{})
	s.upgEvents = make(chan upgradeEvent)
	defer func() {
		close(s.quit)
		s.spawn.close()
	}()
	sigc := s.sigc
	s.armTickets()
	defer s.stopTickets()

	s.workers = make([]*workerProc, s.cfg.Workers)
	for i := range s.workers {
		s.workers[i] = &workerProc{index: i}
	}
	for i := range s.workers {
		if err := s.start(i); err != nil {
			s.log.Error("cannot start a worker", "shard", i, "err", err)
			s.stopAll(fmt.Errorf("start worker %d: %w", i, err))
			break
		}
	}
	for s.state == running || s.alive() > 0 {
		select {
		case sig := <-sigc:
			s.signal(sig)
		case ev := <-s.events:
			s.handle(ev)
		case req := <-s.admin.requests():
			req.reply <- s.adminView(req.id)
		case ev := <-s.upgEvents:
			s.upgradeEvent(ev)
		case <-s.ticketC():
			s.rotateTickets()
		case <-s.kill:
			s.kill = nil
			for _, w := range s.workers {
				if w.alive {
					s.log.Error("worker did not stop in time; killing it", "shard", w.index, "worker_pid", w.pid)
					_ = w.cmd.Process.Kill()
				}
			}
			if s.result == nil {
				s.result = errors.New("workers did not stop by the deadline and were killed")
			}
		}
	}
	if s.result != nil {
		s.log.Error("master stopped", "err", s.result)
	} else {
		s.log.Info("master stopped")
	}
	return s.result
}

func (s *supervisor) alive() int {
	n := 0
	for _, w := range s.workers {
		if w.alive {
			n++
		}
	}
	return n
}

// signal handles SIGTERM or SIGINT: the first drains, the next stops;
// SIGHUP reloads the TLS files and SIGUSR2 upgrades (upgrade.go).
func (s *supervisor) signal(sig os.Signal) {
	switch sig {
	case syscall.SIGHUP:
		s.reload()
		return
	case syscall.SIGUSR2:
		s.startUpgrade()
		return
	}
	switch s.state {
	case running:
		s.abandonUpgrade("draining")
		s.drain(sig.String(), time.Time{})
	default:
		s.log.Warn("stopping now", "signal", sig.String())
		s.stopAll(nil)
	}
}

// drain makes every worker stop accepting and finish by the drain
// deadline; why is the signal, or "upgrade". With notBefore set, the
// workers stay up until then even when they have nothing left to do.
func (s *supervisor) drain(why string, notBefore time.Time) {
	s.log.Info("draining: workers stop accepting; connections may finish", "signal", why, "drain_timeout", s.cfg.DrainTimeout)
	s.state = draining
	s.cancelRestarts()
	// The master lets go of its listeners: once the workers have
	// too, new connections are refused.
	closeListeners(s.lns)
	deadline := time.Now().Add(s.cfg.DrainTimeout)
	for _, w := range s.workers {
		if w.alive {
			s.send(w, &ctl.Message{Type: ctl.TypeDrain, Drain: &ctl.Drain{Deadline: deadline, NotBefore: notBefore}})
		}
	}
	s.kill = time.After(time.Until(deadline) + stopGrace)
}

// stopAll tells every worker to stop at once; result, if not nil, is what
// run returns.
func (s *supervisor) stopAll(result error) {
	if s.state == stopping {
		return
	}
	if result != nil && s.result == nil {
		s.result = result
	}
	s.abandonUpgrade("stopping")
	s.state = stopping
	s.cancelRestarts()
	for _, w := range s.workers {
		if w.alive {
			s.send(w, &ctl.Message{Type: ctl.TypeStop})
		}
	}
	s.kill = time.After(stopGrace)
}

func (s *supervisor) cancelRestarts() {
	for _, w := range s.workers {
		if w.restart != nil {
			w.restart.Stop()
			w.restart = nil
		}
	}
}

func (s *supervisor) send(w *workerProc, m *ctl.Message) {
	_ = w.ctl.SetWriteDeadline(time.Now().Add(sendTimeout))
	if err := w.ctl.Send(m); err != nil {
		s.log.Warn("cannot reach a worker", "shard", w.index, "worker_pid", w.pid, "message", string(m.Type), "err", err)
	}
	_ = w.ctl.SetWriteDeadline(time.Time{})
}

func (s *supervisor) handle(ev event) {
	w := s.workers[ev.index]
	if ev.gen != w.gen {
		return
	}
	switch ev.kind {
	case evReady:
		w.ready = time.Now()
		w.everReady = true
		s.log.Info("worker ready", "shard", w.index, "worker_pid", w.pid, "after", w.ready.Sub(w.started).Round(time.Millisecond))
		s.maybeAllReady()
	case evRestart:
		w.restart = nil
		if s.state != running {
			return
		}
		if err := s.start(w.index); err != nil {
			s.log.Error("cannot start a worker", "shard", w.index, "err", err)
			s.failed(w)
		}
	case evExited:
		s.exited(w, ev)
	}
}

// exited handles the end of a worker process.
func (s *supervisor) exited(w *workerProc, ev event) {
	w.alive = false
	w.ctl.Close()
	up := time.Since(w.started).Round(time.Millisecond)
	cause := exitCause(ev.state, ev.err)
	log := s.log.With("shard", w.index, "worker_pid", w.pid, "cause", cause, "uptime", up)
	if s.state != running {
		if ev.state != nil && ev.state.Success() {
			log.Info("worker exited")
		} else {
			log.Warn("worker exited")
		}
		return
	}
	if !w.ready.IsZero() && time.Since(w.ready) >= s.cfg.MaxRestartBackoff {
		w.failures = 0 // it had been healthy: an isolated failure
	}
	if ev.state != nil && ev.state.Success() {
		// Told to by someone else than the master (SIGTERM to the
		// worker alone): a graceful restart of one shard.
		log.Info("worker exited on its own")
	} else {
		log.Error("worker died")
	}
	s.failed(w)
}

// failed counts a failure of w's shard and restarts it after the back-off,
// or gives up. Only workers that never became ready make the master give
// up (a broken handler factory, a bad configuration, a binary of another
// protocol): restarting them can only fail again. A worker that served
// and then died (a crash under load, running out of memory or
// descriptors, a kill) is always restarted, with the back-off, however
// often: giving up would turn a passing overload into an outage.
func (s *supervisor) failed(w *workerProc) {
	w.failures++
	if w.ready.IsZero() {
		w.unready++
	} else {
		w.unready = 0
	}
	if w.unready > s.cfg.MaxRestarts {
		s.log.Error("SHARD KEEPS FAILING: giving up, stopping every worker",
			"shard", w.index, "failures_in_a_row", w.unready, "max_restarts", s.cfg.MaxRestarts)
		s.stopAll(fmt.Errorf("%w: shard %d failed %d times in a row before it was ready", ErrGaveUp, w.index, w.unready))
		return
	}
	d := s.cfg.RestartBackoff
	for i := 1; i < w.failures && d < s.cfg.MaxRestartBackoff; i++ {
		d *= 2
	}
	d = min(d, s.cfg.MaxRestartBackoff)
	s.log.Warn("restarting shard after back-off", "shard", w.index, "backoff", d,
		"failures_in_a_row", w.failures, "never_ready_in_a_row", w.unready, "max_restarts", s.cfg.MaxRestarts)
	s.scheduleRestart(w, d)
}

func (s *supervisor) scheduleRestart(w *workerProc, d time.Duration) {
	i, gen := w.index, w.gen
	w.restart = time.AfterFunc(d, func() { s.post(event{kind: evRestart, index: i, gen: gen}) })
}

func exitCause(st *os.ProcessState, err error) string {
	if st == nil {
		if err != nil {
			return err.Error()
		}
		return "unknown"
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + unixSignalName(ws.Signal())
	}
	return "exit status " + strconv.Itoa(st.ExitCode())
}

func unixSignalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	case syscall.SIGBUS:
		return "SIGBUS"
	}
	return sig.String()
}

// start starts shard i's worker: a fresh control channel, fresh mesh links
// with every worker alive (each gets its end in a peer message), the
// process, then its init message.
func (s *supervisor) start(i int) error {
	w := s.workers[i]
	w.gen++
	w.ready = time.Time{}
	mc, child, err := ctl.Pair()
	if err != nil {
		return err
	}
	var peers []int
	var ends []*os.File // per peer: the mesh end, then the hand-off end if any
	defer func() {
		for _, f := range ends {
			f.Close()
		}
	}()
	for _, p := range s.workers {
		if p.index == i || !p.alive {
			continue // a peer down gets its links to i when it restarts
		}
		mine, theirs, err := s.peerLinks()
		if err != nil {
			mc.Close()
			child.Close()
			return err
		}
		fds := make([]int, len(theirs))
		for k, f := range theirs {
			fds[k] = int(f.Fd())
		}
		_ = p.ctl.SetWriteDeadline(time.Now().Add(sendTimeout))
		err = p.ctl.Send(&ctl.Message{Type: ctl.TypePeer, Peer: &ctl.Peer{Shard: i}, FDs: fds})
		_ = p.ctl.SetWriteDeadline(time.Time{})
		closeFiles(theirs)
		if err != nil {
			closeFiles(mine)
			s.log.Warn("cannot give a worker its links to a restarted peer", "shard", p.index, "peer", i, "err", err)
			continue
		}
		peers = append(peers, p.index)
		ends = append(ends, mine...)
	}

	// The master's own binary (on Linux through the descriptor it keeps
	// open, whatever is now at its path), with the master's argv[0].
	cmd := exec.Command(s.exe.path, s.args[1:]...)
	cmd.Args[0] = s.args[0]
	cmd.Env = append(workerEnviron(), workerEnv+"=3")
	cmd.ExtraFiles = []*os.File{child}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = workerSysProcAttr()
	err = s.spawn.start(cmd)
	child.Close()
	if err != nil {
		mc.Close()
		return fmt.Errorf("start %s: %w", s.exe.name, err)
	}
	w.cmd, w.ctl, w.pid, w.alive, w.started = cmd, mc, cmd.Process.Pid, true, time.Now()
	log := s.log.With("shard", i, "worker_pid", w.pid)
	log.Info("worker started", "peers", peers)

	gen := w.gen
	// The exit is reported once the control reader has read everything
	// the worker sent (EOF: a refusal is logged before the exit, and
	// exited closes the channel after it), or a moment later if
	// something else still holds the worker's end (a child of its own).
	readerDone := make(chan struct{})
	go func() {
		err := cmd.Wait()
		t := time.NewTimer(readerGrace)
		select {
		case <-readerDone:
		case <-t.C:
		}
		t.Stop()
		s.post(event{kind: evExited, index: i, gen: gen, state: cmd.ProcessState, err: err})
	}()

	fds := make([]int, 0, len(s.lns)+len(ends))
	specs := make([]ctl.Listener, 0, len(s.lns))
	for _, ln := range s.lns {
		specs = append(specs, ln.spec)
		fds = append(fds, ln.fd)
	}
	for _, f := range ends {
		fds = append(fds, int(f.Fd()))
	}
	var cl *ctl.Cluster
	if i < len(s.clns) {
		cl = &ctl.Cluster{Listener: s.clns[i].spec, Nodes: s.members.Nodes, Node: s.members.Self}
		fds = append(fds, s.clns[i].fd)
	}
	init := &ctl.Message{Type: ctl.TypeInit, Protocol: ctl.ProtocolVersion, Init: &ctl.Init{
		Shard: i, Workers: s.cfg.Workers, Config: s.cfgJSON, Secret: s.secret,
		Listeners: specs, Peers: peers, Tickets: s.tickets.wire(), Cluster: cl,
	}, FDs: fds}
	_ = mc.SetWriteDeadline(time.Now().Add(sendTimeout))
	if err := mc.Send(init); err != nil {
		// The process is started: it will exit on its own (no init) and
		// be handled as a failure then.
		log.Error("cannot send the init message; killing the worker", "err", err)
		_ = cmd.Process.Kill()
		close(readerDone)
		return nil
	}
	_ = mc.SetWriteDeadline(time.Time{})

	go func() {
		defer close(readerDone)
		rejected := false
		for first := true; ; first = false {
			m, err := mc.Receive()
			if err != nil {
				return // EOF when the worker exits; Wait reports it
			}
			ctl.CloseFDs(m)
			if m.Type == ctl.TypeStats && !first {
				s.admin.deliver(i, m.Stats) // an answer for the admin endpoint
				continue
			}
			if first && !s.acceptWorker(log, cmd, m) {
				rejected = true // it exits (refused) or is killed
			}
			if m.Type == ctl.TypeReady && !rejected {
				s.post(event{kind: evReady, index: i, gen: gen})
			}
		}
	}()
	return nil
}

// acceptWorker checks a worker's first message: a refusal (the worker
// speaks another control protocol version) is logged, and the worker
// exits on its own; a message of another version is logged and the worker
// killed. Either way the exit counts as a failure of the shard.
func (s *supervisor) acceptWorker(log *slog.Logger, cmd *exec.Cmd, m *ctl.Message) bool {
	if m.Type == ctl.TypeRefused {
		reason := ""
		if m.Refused != nil {
			reason = m.Refused.Reason
		}
		log.Error("worker refused to run: it speaks another control protocol (is its binary the master's?)",
			"worker_protocol", m.Protocol, "protocol", ctl.ProtocolVersion, "reason", reason)
		return false
	}
	if err := ctl.CheckProtocol(m); err != nil {
		log.Error("worker speaks another control protocol (is its binary the master's?); killing it",
			"worker_protocol", m.Protocol, "protocol", ctl.ProtocolVersion, "message", string(m.Type), "err", err)
		_ = cmd.Process.Kill()
		return false
	}
	return true
}

// peerLinks makes the links between two workers: a mesh socketpair and,
// when connections are handed off, a hand-off socketpair. It returns one
// worker's ends and the other's, in that order.
func (s *supervisor) peerLinks() (mine, theirs []*os.File, err error) {
	a, b, err := ctl.Socketpair()
	if err != nil {
		return nil, nil, err
	}
	mine, theirs = []*os.File{a}, []*os.File{b}
	if s.cfg.Forward == ForwardHandoff {
		ha, hb, err := handoff.Pair()
		if err != nil {
			closeFiles(mine)
			closeFiles(theirs)
			return nil, nil, err
		}
		mine, theirs = append(mine, ha), append(theirs, hb)
	}
	return mine, theirs, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// workerEnviron is the master's environment without a worker variable.
func workerEnviron() []string {
	env := os.Environ()
	out := env[:0:0]
	for _, kv := range env {
		if len(kv) > len(workerEnv) && kv[:len(workerEnv)+1] == workerEnv+"=" {
			continue
		}
		out = append(out, kv)
	}
	return out
}
