package server

import (
	"errors"
	"log/slog"
	"os"

	"github.com/subordinate/subordinate/internal/ctl"
)

// workerEnv names the environment variable that makes a process a worker.
// Its value is the number of the descriptor of the control channel; it
// carries nothing secret.
const workerEnv = "SUBORDINATE_WORKER"

// ErrNoFactory is returned by Serve without a HandlerFactory.
var ErrNoFactory = errors.New("server: nil HandlerFactory")

// ErrProtocolVersion is wrapped by the error Serve returns in a worker
// whose master speaks another control protocol version: the worker's
// binary is not its master's. See docs/PROCESSES.md.
var ErrProtocolVersion = ctl.ErrVersion

// Serve runs a Subordinate server and returns when it has stopped.
//
// In the master (the process an operator starts) Serve validates cfg,
// loads or generates the secret, binds every listener, and only then
// starts cfg.Workers worker processes by re-executing this program with
// the same arguments, adding the environment variable SUBORDINATE_WORKER.
// On Linux the master keeps its own executable open and starts every
// worker, a restarted one too, from it: a worker runs the master's code
// even after the file on disk was replaced (elsewhere it runs the file at
// the path os.Executable resolved). A worker whose master speaks another
// control protocol version refuses to run, and Serve returns an error
// wrapping ErrProtocolVersion there. The master supervises the workers
// until SIGTERM or SIGINT, then drains them and returns nil. SIGHUP makes
// every worker reload its TLS files; SIGUSR2 starts the program at the
// master's path as a new master on the same sockets, and once its workers
// are ready this master drains its own and returns nil (see
// Config.PidFile, Config.UpgradeTimeout). It returns an
// error before starting any worker if the config, the secret file or a
// listener is bad, and after stopping every worker if a shard keeps
// failing.
//
// In a worker (IsWorker), Serve receives the master's configuration, the
// secret and the listening sockets over the control channel, runs the
// shard with a Handler from factory, and returns when the master tells it
// to stop or is gone. Only cfg.Logger is taken from the worker's own cfg:
// everything else comes from the master. A program therefore calls Serve
// the same way whichever process it runs in, and must reach the call the
// same way (same flags, same config files) in both.
//
// See docs/PROCESSES.md.
func Serve(cfg Config, factory HandlerFactory) error {
	if factory == nil {
		return ErrNoFactory
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if IsWorker() {
		return runWorker(cfg, factory)
	}
	return runMaster(cfg)
}

// IsWorker reports whether this process is a worker started by a
// Subordinate master. (Serve clears the variable in the worker, so IsWorker
// is meaningful before Serve is called.)
func IsWorker() bool {
	_, ok := os.LookupEnv(workerEnv)
	return ok
}
