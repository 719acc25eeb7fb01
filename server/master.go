package server

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"

	"github.com/subordinate/subordinate/internal/handoff"
)

// runMaster is Serve in the master process: everything that can fail is
// checked before the first worker starts.
func runMaster(cfg Config) error {
	// The master's signals are caught from its first instant: a SIGHUP or
	// SIGUSR2 sent while it starts (by a script that just read the pid
	// file, say) must not kill it with the default action. They wait in
	// the channel until the supervisor runs.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, masterSignals...)
	defer signal.Stop(sigc)
	log := cfg.Logger.With("pid", os.Getpid())
	if err := cfg.Validate(); err != nil {
		return err
	}
	inh, err := receiveUpgrade(log) // nil unless this is the new master of an upgrade
	if err != nil {
		return err
	}
	if inh != nil && len(cfg.Secret) == 0 && cfg.SecretFile == "" {
		cfg.Secret = inh.secret // the old generation's tokens stay good
	}
	secret, err := loadSecret(&cfg, log)
	if err != nil {
		return err
	}
	tickets, err := newMasterTickets(&cfg, inh, log)
	if err != nil {
		return err
	}
	exe, err := openMasterBinary(log)
	if err != nil {
		return err
	}
	defer exe.close()
	if cfg.Forward == ForwardHandoff && !handoff.Supported() {
		log.Warn("this system cannot pass sockets over SOCK_SEQPACKET; relaying forwarded connections instead")
		cfg.Forward = ForwardRelay
	}
	members, err := cfg.Cluster.resolve()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	wire := cfg
	wire.Secret, wire.Logger = nil, nil
	cfgJSON, err := json.Marshal(wire)
	if err != nil {
		return fmt.Errorf("encode the config: %w", err)
	}
	lns, err := bindListeners(&cfg, inh)
	var clns []*masterListener
	if err == nil {
		if clns, err = bindClusterListeners(&cfg, inh); err != nil {
			closeListeners(lns)
		}
	}
	if inh != nil {
		inh.closeRest(log)
	}
	if err != nil {
		return err
	}
	defer closeListeners(lns)
	defer closeListeners(clns)
	if cfg.PidFile != "" {
		if inh == nil {
			if err := writePidFile(cfg.PidFile, os.Getpid()); err != nil {
				return err
			}
		}
		defer removePidFile(cfg.PidFile, os.Getpid(), log)
	}

	addrs := make([]string, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.displayAddr()
	}
	var admin *adminServer
	if cfg.Admin != "" {
		if admin, err = listenAdmin(&cfg, log, addrs, members); err != nil {
			return err
		}
		defer admin.close()
		go admin.serve()
	}
	if members.Size() > 0 {
		log.Info("cluster node", "node", members.Self, "nodes", members.Size(), "cluster_listen", clns[0].displayAddr(), "workers", cfg.Workers)
	}
	log.Info("master started", "listen", addrs, "workers", cfg.Workers)
	s := &supervisor{
		sigc:    sigc,
		cfg:     cfg,
		cfgJSON: cfgJSON,
		secret:  secret,
		lns:     lns,
		clns:    clns,
		members: members,
		exe:     exe,
		args:    os.Args,
		log:     log,
		admin:   admin,
		tickets: tickets,

		upgradePath: upgradeBinaryPath(os.Args[0], exe),
	}
	if inh != nil {
		// The old master waits for this one's workers before it drains
		// its own.
		s.onAllReady = func() {
			if cfg.PidFile != "" {
				if err := writePidFile(cfg.PidFile, os.Getpid()); err != nil {
					log.Error("upgrade: cannot write the pid file", "err", err)
				}
			}
			inh.ready(log)
		}
	}
	defer admin.stopped() // before close: handlers waiting on the supervisor answer 503
	return s.run()
}
