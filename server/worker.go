package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/subordinate/subordinate/internal/cluster"
	"github.com/subordinate/subordinate/internal/ctl"
)

// Timings of a worker.
const (
	// initTimeout bounds the wait for the init message.
	initTimeout = 10 * time.Second
	// exitGrace is how long past a drain deadline, or after a stop, the
	// runtime may take to return before the worker exits anyway.
	exitGrace = 2 * time.Second
)

// runWorker is Serve in a worker process.
func runWorker(local Config, factory HandlerFactory) error {
	v := os.Getenv(workerEnv)
	os.Unsetenv(workerEnv) // not for the handler's own children
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return fmt.Errorf("worker: %s=%q: want a descriptor number", workerEnv, v)
	}
	nameWorker()
	log := local.Logger.With("pid", os.Getpid())
	cc, err := ctl.New(os.NewFile(uintptr(fd), "ctl"))
	if err != nil {
		return fmt.Errorf("worker: control channel: %w", err)
	}
	defer cc.Close()

	_ = cc.SetReadDeadline(time.Now().Add(initTimeout))
	m, err := cc.Receive()
	if err != nil {
		return fmt.Errorf("worker: receive init: %w", err)
	}
	_ = cc.SetReadDeadline(time.Time{})
	// The version first: a master of another version may mean anything
	// by the rest of its message.
	if err := ctl.CheckProtocol(m); err != nil {
		ctl.CloseFDs(m)
		err = fmt.Errorf("worker: refusing to run: the master's first message: %w", err)
		_ = cc.SetWriteDeadline(time.Now().Add(initTimeout))
		_ = cc.Send(&ctl.Message{Type: ctl.TypeRefused, Protocol: ctl.ProtocolVersion, Refused: &ctl.Refused{Reason: err.Error()}})
		log.Error("refusing to run: the master speaks another control protocol", "master_protocol", m.Protocol, "protocol", ctl.ProtocolVersion)
		return err
	}
	if m.Type != ctl.TypeInit || m.Init == nil {
		ctl.CloseFDs(m)
		return fmt.Errorf("worker: first message is %q, want init", m.Type)
	}
	info, err := shardInfoOf(m, local, factory)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	log = log.With("shard", info.Index)
	info.Logger = log

	// A terminal's Ctrl-C goes to the master's process group, not ours;
	// SIGTERM or SIGINT sent to this worker alone drains it (the master
	// then starts a fresh one), a second one stops it.
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigc)

	rt, err := newShardRuntime(info)
	if err != nil {
		return fmt.Errorf("worker: shard %d: %w", info.Index, err)
	}
	installTickets(rt, m.Init.Tickets, log) // before the first handshake
	served := make(chan error, 1)
	ready := make(chan struct{})
	go func() { served <- rt.Serve(func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-served:
		if err == nil {
			err = errors.New("shard stopped before it was ready")
		}
		return fmt.Errorf("worker: %w", err)
	}
	if err := cc.Send(&ctl.Message{Type: ctl.TypeReady, Protocol: ctl.ProtocolVersion}); err != nil {
		rt.Stop()
		return fmt.Errorf("worker: tell the master ready: %w", err)
	}
	log.Info("worker serving", "workers", info.Count, "peers", len(info.Peers), "crash_on_panic", info.Config.CrashOnPanic)

	msgs := make(chan *ctl.Message)
	ctlErr := make(chan error, 1)
	go func() {
		for {
			m, err := cc.Receive()
			if err != nil {
				ctlErr <- err
				return
			}
			msgs <- m
		}
	}()

	var exitBy <-chan time.Time // the runtime must have returned by then
	drain := func(deadline, notBefore time.Time, why string) {
		if exitBy != nil {
			return
		}
		log.Info("draining", "why", why, "deadline", deadline.Format(time.RFC3339Nano))
		if l, ok := rt.(lingerer); ok && !notBefore.IsZero() {
			l.LingerUntil(notBefore)
		}
		rt.Drain(deadline)
		exitBy = time.After(time.Until(deadline) + exitGrace)
	}
	stop := func(why string) {
		log.Info("stopping", "why", why)
		rt.Stop()
		exitBy = time.After(exitGrace)
	}
	for {
		select {
		case err := <-served:
			if err != nil {
				return fmt.Errorf("worker: shard %d: %w", info.Index, err)
			}
			log.Info("worker stopped")
			return nil
		case m := <-msgs:
			switch m.Type {
			case ctl.TypePeer:
				if m.Peer == nil || len(m.FDs) != info.linksPerPeer() {
					ctl.CloseFDs(m)
					log.Error("bad peer message from the master", "fds", len(m.FDs))
					continue
				}
				rt.SetPeer(m.Peer.Shard, peerLinksOf(m.FDs))
			case ctl.TypeDrain:
				ctl.CloseFDs(m)
				if m.Drain != nil {
					drain(m.Drain.Deadline, m.Drain.NotBefore, "master")
				}
			case ctl.TypeReload:
				ctl.CloseFDs(m)
				if c, ok := rt.(certReloader); ok {
					c.ReloadCerts()
				}
			case ctl.TypeTickets:
				ctl.CloseFDs(m)
				installTickets(rt, m.Tickets, log)
			case ctl.TypeStop:
				ctl.CloseFDs(m)
				stop("master")
			case ctl.TypeStats:
				ctl.CloseFDs(m)
				if m.Stats != nil {
					go answerStats(cc, rt, info.Index, m.Stats)
				}
			default:
				ctl.CloseFDs(m)
				log.Warn("unknown message from the master", "type", string(m.Type))
			}
		case err := <-ctlErr:
			if errors.Is(err, io.EOF) {
				log.Error("the master is gone (control channel closed)")
			} else {
				log.Error("control channel broken", "err", err)
			}
			ctlErr = nil
			msgs = nil
			stop("master gone")
		case sig := <-sigc:
			if exitBy == nil {
				drain(time.Now().Add(info.Config.DrainTimeout), time.Time{}, sig.String())
			} else {
				stop(sig.String())
			}
		case <-exitBy:
			return fmt.Errorf("worker: shard %d did not stop in time", info.Index)
		}
	}
}

// peerLinksOf makes the links to one peer of its descriptors: the mesh
// link, then the hand-off link if there is one.
func peerLinksOf(fds []int) peerFiles {
	l := peerFiles{Mesh: os.NewFile(uintptr(fds[0]), "mesh")}
	if len(fds) > 1 {
		l.Handoff = os.NewFile(uintptr(fds[1]), "handoff")
	}
	return l
}

// shardInfoOf builds the runtime's info from the init message: the
// master's config, this process's logger, the descriptors split into
// listeners and mesh links.
func shardInfoOf(m *ctl.Message, local Config, factory HandlerFactory) (*shardInfo, error) {
	in := m.Init
	fds := m.FDs
	fail := func(err error) (*shardInfo, error) {
		ctl.CloseFDs(m)
		return nil, err
	}
	var cfg Config
	if err := json.Unmarshal(in.Config, &cfg); err != nil {
		return fail(fmt.Errorf("decode config: %w", err))
	}
	cfg.Logger = local.Logger
	cfg.Secret = in.Secret
	if in.Workers < 1 || in.Shard < 0 || in.Shard >= in.Workers {
		return fail(fmt.Errorf("init: shard %d of %d", in.Shard, in.Workers))
	}
	info := &shardInfo{
		Index: in.Shard, Count: in.Workers, Config: cfg, Secret: in.Secret,
		Factory: factory, Peers: make(map[int]peerFiles, len(in.Peers)),
	}
	per := info.linksPerPeer()
	nfd := len(in.Listeners) + per*len(in.Peers)
	if in.Cluster != nil {
		nfd++
	}
	if cfg.Cluster.Enabled() != (in.Cluster != nil) {
		return fail(fmt.Errorf("init: cluster config %v, cluster listener %v", cfg.Cluster.Enabled(), in.Cluster != nil))
	}
	if len(fds) != nfd {
		return fail(fmt.Errorf("init: %d descriptors, want %d", len(fds), nfd))
	}
	for _, l := range in.Listeners {
		info.Listeners = append(info.Listeners, shardListener{URL: l.URL, Network: l.Network, Address: l.Address, FD: fds[0]})
		fds = fds[1:]
	}
	for i, p := range in.Peers {
		info.Peers[p] = peerLinksOf(fds[i*per : (i+1)*per])
	}
	if c := in.Cluster; c != nil {
		info.Members = cluster.Members{Nodes: c.Nodes, Self: c.Node}
		if c.Node < 0 || c.Node >= len(c.Nodes) {
			return fail(fmt.Errorf("init: node %d of %d", c.Node, len(c.Nodes)))
		}
		info.Cluster = os.NewFile(uintptr(fds[len(fds)-1]), "cluster")
	}
	return info, nil
}
