package server

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/subordinate/subordinate/internal/ctl"
)

// upgradeEnv names the environment variable that makes a master the new
// master of a binary upgrade: its value is the number of the descriptor
// of the channel to the old master (3). It carries nothing secret: the
// listening sockets and the secret come over the channel.
const upgradeEnv = "SUBORDINATE_UPGRADE"

// upgradeSkew is added to Config.PreambleTimeout for how long the old
// workers stay up, drained, for each other (see routed.LingerUntil): the
// drain messages reach them one after the other.
const upgradeSkew = time.Second

// A binary upgrade (SIGUSR2), as the old master sees it:
//
//  1. it starts the binary at its path (upgradeBinaryPath, resolved when
//     it started; a deploy renames a new file there) with its own
//     arguments, a control channel as descriptor 3 and
//     SUBORDINATE_UPGRADE=3;
//  2. it sends an upgrade message: the listener specs, the secret, and
//     the listening sockets as SCM_RIGHTS descriptors;
//  3. the new master binds nothing it was given, starts its workers, and
//     once every one is ready writes the pid file and answers ready;
//  4. the old master then drains its own workers as on SIGTERM (but
//     leaves Unix socket files, which the new master serves, in place)
//     and exits.
//
// If the new master exits, closes the channel or is not ready within
// Config.UpgradeTimeout, it is killed (with it, its workers) and the old
// master serves on: the sockets never stopped accepting.
type upgrade struct {
	attempt int
	pid     int
	proc    *os.Process
	ctl     *ctl.Conn
	timer   *time.Timer
	log     *slog.Logger
	// closed is set once the channel reached EOF: the process gets
	// readerGrace to exit (and be reported with its cause) before it is
	// killed.
	closed bool
}

type upgradeEventKind int

const (
	upReady upgradeEventKind = iota
	upClosed
	upExited
	upTimeout
)

type upgradeEvent struct {
	kind    upgradeEventKind
	attempt int
	state   *os.ProcessState
	err     error
}

func (s *supervisor) postUpgrade(ev upgradeEvent) {
	select {
	case s.upgEvents <- ev:
	case <-s.quit:
	}
}

// upgradeBinaryPath is the path SIGUSR2 runs: argv[0] made absolute (as
// the master was started: a symbolic link stays one, so that a deploy
// that moves a link to a new release is followed), or found in PATH, or
// failing both the executable os.Executable found.
func upgradeBinaryPath(argv0 string, exe *masterBinary) string {
	if strings.Contains(argv0, "/") {
		if abs, err := filepath.Abs(argv0); err == nil {
			return abs
		}
	} else if p, err := exec.LookPath(argv0); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return exe.name
}

// reload handles SIGHUP: every worker re-reads its TLS files. A message
// rather than the signal itself: the master already has an ordered
// channel to each worker, a worker that is starting reads it once it
// serves (and has read the files at start anyway), and a SIGHUP sent to a
// worker by mistake does not reach the others.
func (s *supervisor) reload() {
	n := 0
	for _, w := range s.workers {
		if w.alive {
			s.send(w, &ctl.Message{Type: ctl.TypeReload})
			n++
		}
	}
	s.log.Info("reload: workers re-read the TLS certificates", "signal", "SIGHUP", "workers", n)
}

// startUpgrade handles SIGUSR2.
func (s *supervisor) startUpgrade() {
	if s.upg != nil {
		s.log.Warn("upgrade: one is under way; SIGUSR2 ignored", "new_master_pid", s.upg.pid)
		return
	}
	if s.state != running {
		s.log.Warn("upgrade: this master is draining or stopping; SIGUSR2 ignored")
		return
	}
	s.attempts++
	log := s.log.With("new_binary", s.upgradePath)
	log.Info("upgrade: starting the new binary", "signal", "SIGUSR2", "upgrade_timeout", s.cfg.UpgradeTimeout)
	mc, child, err := ctl.Pair()
	if err != nil {
		s.upgradeFailed(log, "cannot make the channel to the new master", "err", err)
		return
	}
	env := []string{upgradeEnv + "=3"}
	for _, kv := range workerEnviron() {
		if !strings.HasPrefix(kv, upgradeEnv+"=") {
			env = append(env, kv)
		}
	}
	// The raw descriptors, not os/exec: ExtraFiles would want the
	// listening sockets as *os.File, which the Go runtime's poller would
	// take. The new master is no worker: no parent-death signal, no
	// process group of its own; it outlives this master.
	pid, _, err := syscall.StartProcess(s.upgradePath, s.args, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{0, 1, 2, child.Fd()},
	})
	child.Close()
	if err != nil {
		mc.Close()
		s.upgradeFailed(log, "cannot start the new binary", "err", err)
		return
	}
	proc, _ := os.FindProcess(pid) // never fails on Unix
	log = log.With("new_master_pid", pid)
	u := &upgrade{attempt: s.attempts, pid: pid, proc: proc, ctl: mc, log: log}
	s.upg = u
	attempt := u.attempt
	go func() {
		st, err := proc.Wait()
		s.postUpgrade(upgradeEvent{kind: upExited, attempt: attempt, state: st, err: err})
	}()
	u.timer = time.AfterFunc(s.cfg.UpgradeTimeout, func() { s.postUpgrade(upgradeEvent{kind: upTimeout, attempt: attempt}) })

	fds := make([]int, 0, len(s.lns)+len(s.clns))
	specs := make([]ctl.Listener, 0, len(s.lns)+len(s.clns))
	for _, ln := range append(s.lns[:len(s.lns):len(s.lns)], s.clns...) {
		specs = append(specs, ln.spec)
		fds = append(fds, ln.fd)
	}
	_ = mc.SetWriteDeadline(time.Now().Add(sendTimeout))
	err = mc.Send(&ctl.Message{Type: ctl.TypeUpgrade, Protocol: ctl.ProtocolVersion,
		Upgrade: &ctl.Upgrade{Listeners: specs, Secret: s.secret, MasterPid: os.Getpid(), Tickets: s.tickets.wire()}, FDs: fds})
	_ = mc.SetWriteDeadline(time.Time{})
	if err != nil {
		// Most likely it has exited already: its exit reports the
		// cause; if not, it is killed after readerGrace.
		log.Warn("upgrade: cannot hand the listening sockets to the new master", "err", err)
		u.closed = true
		u.timer.Reset(readerGrace)
		return
	}
	go func() {
		for {
			m, err := mc.Receive()
			if err != nil {
				s.postUpgrade(upgradeEvent{kind: upClosed, attempt: attempt, err: err})
				return
			}
			ctl.CloseFDs(m)
			if m.Type == ctl.TypeReady {
				s.postUpgrade(upgradeEvent{kind: upReady, attempt: attempt})
				return
			}
			log.Warn("upgrade: unexpected message from the new master", "type", string(m.Type))
		}
	}()
}

// upgradeEvent handles what the helpers of an upgrade report.
func (s *supervisor) upgradeEvent(ev upgradeEvent) {
	u := s.upg
	if u == nil || ev.attempt != u.attempt {
		return // an upgrade that is over
	}
	switch ev.kind {
	case upReady:
		s.upgraded()
	case upExited:
		s.upgradeFailed(u.log, "the new master exited before it was ready", "cause", exitCause(ev.state, ev.err))
	case upClosed:
		if !u.closed {
			u.closed = true
			u.timer.Reset(readerGrace) // it exits, or is killed
		}
	case upTimeout:
		if u.closed {
			s.upgradeFailed(u.log, "the new master closed its channel without being ready; killed it")
		} else {
			s.upgradeFailed(u.log, "the new master was not ready in time; killed it", "upgrade_timeout", s.cfg.UpgradeTimeout)
		}
	}
}

// upgraded: the new master's workers are all ready. This master drains
// its own and exits, leaving the listening sockets and their Unix socket
// files to the new one.
func (s *supervisor) upgraded() {
	u := s.upg
	u.timer.Stop()
	u.ctl.Close()
	s.upgradeDone = true
	for _, ln := range s.lns {
		ln.unixPath = "" // the new master serves it: do not unlink it
	}
	linger := min(s.cfg.PreambleTimeout+upgradeSkew, s.cfg.DrainTimeout)
	u.log.Info("upgrade: the new master is ready; this master drains its workers and exits", "linger", linger)
	s.drain("upgrade", time.Now().Add(linger))
}

// upgradeFailed ends an upgrade that did not work: the new master, if
// any, is killed (its workers follow it) and this master serves on.
func (s *supervisor) upgradeFailed(log *slog.Logger, why string, attrs ...any) {
	if u := s.upg; u != nil {
		u.timer.Stop()
		u.ctl.Close()
		_ = u.proc.Kill() // an error if it has exited: nothing to kill
		s.upg = nil
	}
	s.armTickets() // rotations held for the upgrade resume
	log.Error("UPGRADE FAILED: "+why+"; this master serves on", attrs...)
	if s.cfg.PidFile != "" {
		if pid, err := readPidFile(s.cfg.PidFile); err != nil || pid != os.Getpid() {
			if err := writePidFile(s.cfg.PidFile, os.Getpid()); err != nil {
				log.Error("cannot rewrite the pid file", "err", err)
			}
		}
	}
}

// abandonUpgrade kills a new master not ready yet: this master drains
// or stops (SIGTERM, or it gave up), and so the server goes.
func (s *supervisor) abandonUpgrade(why string) {
	u := s.upg
	if u == nil || s.upgradeDone {
		return
	}
	u.timer.Stop()
	u.ctl.Close()
	_ = u.proc.Kill()
	s.upg = nil
	u.log.Warn("upgrade abandoned: this master is "+why+"; killed the new master", "new_master_pid", u.pid)
}

// maybeAllReady runs onAllReady once every worker is ready.
func (s *supervisor) maybeAllReady() {
	if s.onAllReady == nil || s.state != running {
		return
	}
	for _, w := range s.workers {
		if !w.alive || w.ready.IsZero() {
			return
		}
	}
	f := s.onAllReady
	s.onAllReady = nil
	f()
}

// inheritance is what a new master of an upgrade got from the old one.
type inheritance struct {
	cc     *ctl.Conn
	oldPid int
	secret []byte
	lns    map[string]*masterListener // by listen URL, until taken
	unix   map[*masterListener]string // taken Unix listeners: their path

	// tickets are the old master's TLS session ticket keys (nil if it
	// had none).
	tickets *ctl.Tickets
}

// receiveUpgrade reads the old master's upgrade message when this process
// is the new master of an upgrade (SUBORDINATE_UPGRADE set); it returns
// nil otherwise.
func receiveUpgrade(log *slog.Logger) (*inheritance, error) {
	v, ok := os.LookupEnv(upgradeEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(upgradeEnv) // not for the workers
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("upgrade: %s=%q: want a descriptor number", upgradeEnv, v)
	}
	cc, err := ctl.New(os.NewFile(uintptr(fd), "upgrade"))
	if err != nil {
		return nil, fmt.Errorf("upgrade: channel to the old master: %w", err)
	}
	_ = cc.SetReadDeadline(time.Now().Add(initTimeout))
	m, err := cc.Receive()
	_ = cc.SetReadDeadline(time.Time{})
	if err != nil {
		cc.Close()
		return nil, fmt.Errorf("upgrade: receive the old master's sockets: %w", err)
	}
	// Not CheckProtocol: an upgrade is from one version to another, and
	// the upgrade message only ever gains fields.
	if m.Type != ctl.TypeUpgrade || m.Upgrade == nil || len(m.FDs) != len(m.Upgrade.Listeners) {
		ctl.CloseFDs(m)
		cc.Close()
		return nil, fmt.Errorf("upgrade: the old master sent %q with %d descriptors, want an upgrade message with one per listener", m.Type, len(m.FDs))
	}
	in := &inheritance{cc: cc, oldPid: m.Upgrade.MasterPid, secret: m.Upgrade.Secret, tickets: m.Upgrade.Tickets,
		lns: map[string]*masterListener{}, unix: map[*masterListener]string{}}
	for i, l := range m.Upgrade.Listeners {
		// unixPath stays empty until the upgrade is done: a new master
		// that fails must not unlink the file the old one serves.
		in.lns[l.URL] = &masterListener{spec: l, fd: m.FDs[i]}
	}
	log.Info("upgrade: took over the old master's sockets", "old_master_pid", in.oldPid, "listeners", len(in.lns))
	return in, nil
}

// take returns the old master's socket for listen URL u, or nil.
func (in *inheritance) take(u string) *masterListener {
	if in == nil {
		return nil
	}
	ln, ok := in.lns[u]
	if !ok {
		return nil
	}
	delete(in.lns, u)
	if ln.spec.Network == "unix" {
		in.unix[ln] = ln.spec.Address
	}
	return ln
}

// closeRest closes the old master's sockets this config does not listen
// on (the new binary was started with other listeners).
func (in *inheritance) closeRest(log *slog.Logger) {
	for u, ln := range in.lns {
		log.Warn("upgrade: the old master listens on an address this config does not; closing it here", "listen", u)
		ln.close()
	}
	in.lns = nil
}

// ready tells the old master this one serves: it then drains and exits.
// From now on the Unix socket files are this master's, removed when it
// exits.
func (in *inheritance) ready(log *slog.Logger) {
	defer in.cc.Close()
	_ = in.cc.SetWriteDeadline(time.Now().Add(sendTimeout))
	if err := in.cc.Send(&ctl.Message{Type: ctl.TypeReady, Protocol: ctl.ProtocolVersion}); err != nil {
		log.Error("upgrade: cannot tell the old master this one is ready (it will kill this master at its upgrade timeout)", "err", err)
		return
	}
	for ln, path := range in.unix {
		ln.unixPath = path
	}
	log.Info("upgrade: ready; the old master drains and exits", "old_master_pid", in.oldPid)
}
