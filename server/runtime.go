package server

import (
	"log/slog"
	"os"
	"time"

	"github.com/subordinate/subordinate/internal/cluster"
)

// shardRuntime is the seam between the process model and the shard: what
// a worker process runs once the master has sent it its init message. The
// worker process (worker.go) owns the control channel, signals and exit;
// the runtime owns the event loop, the listeners, the mesh links and the
// connections.
//
// Serve is called once. SetPeer, Drain and Stop are called from the
// worker's goroutine, concurrently with Serve, only after Serve has called
// ready (or not at all).
type shardRuntime interface {
	// Serve starts the shard, calls ready once it accepts connections,
	// and returns when it has stopped: after Stop, or when a drain has
	// finished. It returns nil for a stop it was asked for.
	Serve(ready func()) error

	// SetPeer gives the runtime its ends of fresh links to peer, which
	// has (re)started. The runtime owns them. Previous links to the same
	// peer are dead by then (the peer process exited).
	SetPeer(peer int, links peerFiles)

	// Drain makes the shard stop accepting; connections in flight go on
	// until they close or deadline passes, then they are closed and Serve
	// returns.
	Drain(deadline time.Time)

	// Stop closes every connection at once and makes Serve return.
	Stop()
}

// shardInfo is what a shard runtime is built from.
type shardInfo struct {
	// Index is this shard's index, 0 <= Index < Count.
	Index int
	// Count is the number of shards (workers).
	Count int
	// Config is the master's validated configuration (Logger is this
	// process's, Secret is set).
	Config Config
	// Secret is the direct-routing secret (also in Config.Secret).
	Secret []byte
	// Factory makes the shard's Handler.
	Factory HandlerFactory
	// Logger logs with "shard" and "pid".
	Logger *slog.Logger
	// Listeners are the listening sockets, in the order of Config.Listen.
	Listeners []shardListener
	// Peers are this worker's ends of the links to each peer, by peer
	// index. A peer that was down when this worker started is absent:
	// SetPeer brings its links when it is back. The runtime owns the
	// files.
	Peers map[int]peerFiles
	// Cluster is the worker's cluster listener (nil outside a cluster):
	// the same worker of every other node links with it. The runtime
	// owns it. Members are the cluster's nodes (zero outside one).
	Cluster *os.File
	Members cluster.Members
}

// linksPerPeer is the number of descriptors per peer in the master's
// messages: the mesh link, and the hand-off link when connections are
// handed off.
func (info *shardInfo) linksPerPeer() int {
	if info.Config.Forward == ForwardHandoff {
		return 2
	}
	return 1
}

// peerFiles are a worker's ends of its links to one peer.
type peerFiles struct {
	// Mesh is the socketpair end that carries the smux session.
	Mesh *os.File
	// Handoff is the SOCK_SEQPACKET socketpair end that carries sockets
	// handed off (nil when Config.Forward is relay).
	Handoff *os.File
}

// Close closes both files.
func (l peerFiles) Close() {
	l.Mesh.Close()
	if l.Handoff != nil {
		l.Handoff.Close()
	}
}

// shardListener is one listener of a shard.
type shardListener struct {
	// URL is the listen URL from the config ("tcp://127.0.0.1:7000").
	URL string
	// Network and Address are the bound address ("tcp",
	// "127.0.0.1:7000"; "unix", "/run/sub.sock").
	Network, Address string
	// FD is the listening socket the master bound and passed. The
	// runtime owns it. It must never be given to the Go runtime's poller
	// (see internal/gnetx): adopt it with gnetx.
	FD int
}

// newShardRuntime builds the runtime of this worker. It takes ownership of
// the descriptors in info, and closes them if it fails.
// It is set by route.go to the routed runtime; tests may replace it.
var newShardRuntime func(info *shardInfo) (shardRuntime, error)
