package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ProtocolVersion is the version of the conversation this package speaks
// (the message types, their fields and their order). Raise it with any
// change a process of the previous version would misread. The framing (a
// 4-byte length, then JSON with "type" and "protocol") never changes, so
// that two versions can always tell each other apart.
const ProtocolVersion = 2

// ErrVersion is wrapped by the error CheckProtocol returns when the other
// side speaks another version.
var ErrVersion = errors.New("ctl: another control protocol version")

// CheckProtocol checks the first message received from the other side
// (init for a worker; ready or refused for the master): it returns nil if
// it carries ProtocolVersion, and otherwise an error wrapping ErrVersion
// that names both versions. A message without a version (a process built
// before versions existed) is version 0.
func CheckProtocol(m *Message) error {
	if m.Protocol == ProtocolVersion {
		return nil
	}
	return fmt.Errorf("%w: the other side speaks version %d, this program %d", ErrVersion, m.Protocol, ProtocolVersion)
}

// Type names a control message.
type Type string

// The control messages. See the package documentation for who sends which.
const (
	TypeInit  Type = "init"
	TypeReady Type = "ready"
	TypePeer  Type = "peer"
	TypeDrain Type = "drain"
	TypeStop  Type = "stop"
	// TypeRefused is the worker's answer to an init it will not run:
	// another protocol version. The worker exits after sending it.
	TypeRefused Type = "refused"
	// TypeStats asks a worker for a snapshot of its figures (master to
	// worker, Stats.ID set) and carries the answer (worker to master,
	// Stats.ID echoed, Stats.Snapshot set). Added in version 2.
	TypeStats Type = "stats"
	// TypeReload asks a worker to re-read its TLS certificates, keys and
	// client CA from disk (the master's SIGHUP). Added in version 2.
	TypeReload Type = "reload"
	// TypeUpgrade is the first message of a binary upgrade, from the old
	// master to the new one it started (SIGUSR2), on a channel of their
	// own; the new master answers ready once its workers are. Added in
	// version 2. Its fields only ever grow, so that a new master can read
	// the message of an old one whatever their versions.
	TypeUpgrade Type = "upgrade"
	// TypeTickets gives a worker the TLS session ticket keys after the
	// master rotated them (Message.Tickets). Added in version 2.
	TypeTickets Type = "tickets"
)

// Message is one control message. Exactly the field that matches Type is
// set (none for ready and stop).
type Message struct {
	Type Type `json:"type"`
	// Protocol is ProtocolVersion on the first message each side sends:
	// the master's init, the worker's ready or refused. It is 0 on the
	// others.
	Protocol int      `json:"protocol,omitempty"`
	Init     *Init    `json:"init,omitempty"`
	Peer     *Peer    `json:"peer,omitempty"`
	Drain    *Drain   `json:"drain,omitempty"`
	Refused  *Refused `json:"refused,omitempty"`
	Stats    *Stats   `json:"stats,omitempty"`
	Upgrade  *Upgrade `json:"upgrade,omitempty"`
	Tickets  *Tickets `json:"tickets,omitempty"`

	// FDs are the file descriptors sent with the message. On Receive they
	// are new descriptors of this process, close-on-exec, owned by the
	// caller. On Send they are only borrowed: the caller still owns them.
	FDs []int `json:"-"`

	// NFD is the number of descriptors that belong to the message. Send
	// sets it from len(FDs).
	NFD int `json:"nfd,omitempty"`
}

// Init is everything a worker needs to run its shard. Its FDs are the
// listening sockets in the order of Listeners, then for each entry of
// Peers, in that order, two: the mesh link end and the hand-off link end;
// then, with Cluster, the worker's cluster listener.
type Init struct {
	// Shard is the index of the worker's shard, 0 <= Shard < Workers.
	Shard int `json:"shard"`
	// Workers is the number of shards.
	Workers int `json:"workers"`
	// Config is the server configuration, encoded by the server package
	// (this package does not know its shape).
	Config json.RawMessage `json:"config"`
	// Secret is the secret that proves a direct-routing client. It never
	// leaves the control channel.
	Secret []byte `json:"secret"`
	// Listeners describe the listening sockets, in the order of the FDs.
	Listeners []Listener `json:"listeners"`
	// Peers are the shard indexes whose link ends (mesh, hand-off) follow
	// the listeners among the FDs. A peer that is down at the time is absent;
	// a peer message brings its link when it is back.
	Peers []int `json:"peers"`
	// Tickets are the TLS session ticket keys in use when the worker
	// starts (nil without a tls:// listener). They never leave the
	// control channel. Added in version 2.
	Tickets *Tickets `json:"tickets,omitempty"`
	// Cluster places the worker in its cluster (docs/CLUSTER.md); nil
	// outside one. Optional, so version 2 still: a worker is always its
	// own master's binary.
	Cluster *Cluster `json:"cluster,omitempty"`
}

// Cluster is what a worker of a cluster node needs beyond the config: the
// node list the master resolved (from a file or the hostname, read once)
// and its cluster listener, the last of the Init's FDs, where the same
// worker of the other nodes links with it.
type Cluster struct {
	Listener Listener `json:"listener"`
	// Nodes are the nodes' addresses, node i at index i; Node is this
	// node's index.
	Nodes []string `json:"nodes"`
	Node  int      `json:"node"`
}

// Listener describes one listening socket.
type Listener struct {
	// Network is "tcp" or "unix".
	Network string `json:"network"`
	// Address is the address the socket is bound to, in the form
	// net.Addr.String gives ("127.0.0.1:7000", "/run/sub.sock").
	Address string `json:"address"`
	// URL is the listen URL the operator gave ("tcp://127.0.0.1:7000").
	URL string `json:"url"`
}

// Peer announces fresh links to a restarted peer. Its two FDs are this
// worker's end of the mesh link and its end of the hand-off link.
type Peer struct {
	Shard int `json:"shard"`
}

// Drain asks the worker to stop accepting and to let the connections in
// flight finish until Deadline, then exit.
type Drain struct {
	Deadline time.Time `json:"deadline"`
	// NotBefore, when set, keeps the worker up until then even with
	// nothing left to wait for: its peers, which stopped accepting at
	// about the same time, may still hand it connections they accepted
	// before (a binary upgrade drains the old workers while the new
	// ones serve, and wants no connection refused). Added in version 2.
	NotBefore time.Time `json:"not_before,omitzero"`
}

// Refused says why a worker will not run the init it was sent.
type Refused struct {
	Reason string `json:"reason"`
}

// Stats is a request for a worker's figures, or its answer. The master
// numbers each request; the worker answers with the same ID and its
// snapshot, encoded by the server package (this package does not know its
// shape).
type Stats struct {
	ID       uint64          `json:"id"`
	Snapshot json.RawMessage `json:"snapshot,omitempty"`
}

// Upgrade is what an old master hands the new master it started: the
// listening sockets (its FDs, in the order of Listeners) and the secret,
// so that connections with a direct-routing token made by the old
// generation are still accepted by the new one.
type Upgrade struct {
	// Listeners describe the listening sockets; the new master takes the
	// one whose URL is in its own config and binds the others afresh.
	Listeners []Listener `json:"listeners"`
	// Secret is the old master's direct-routing secret. It never leaves
	// the channel.
	Secret []byte `json:"secret"`
	// MasterPid is the old master's process id, for the new one's logs.
	MasterPid int `json:"master_pid"`
	// Tickets are the old master's TLS session ticket keys (nil without
	// a tls:// listener), so that sessions of the old generation resume
	// on the new one. They never leave the channel. Added in version 2.
	Tickets *Tickets `json:"tickets,omitempty"`
}

// Tickets are the TLS session ticket keys every worker uses, made and
// rotated by the master: the first encrypts new tickets, all decrypt.
// They are secrets: they travel on the control channel only, and are
// never logged.
type Tickets struct {
	// Keys are 32 bytes each (crypto/tls.Config.SetSessionTicketKeys),
	// the current key first, then the previous ones, newest first.
	Keys [][]byte `json:"keys"`
	// Rotation counts the master's rotations so far (0: the keys it
	// started with), for logs and tests. It is not secret.
	Rotation uint64 `json:"rotation"`
}
