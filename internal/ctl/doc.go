// Package ctl is the control channel between the Subordinate master and one
// worker process: a Unix stream socketpair made by the master, one end kept
// by the master and the other inherited by the worker.
//
// A message is a 4-byte big-endian length followed by that many bytes of
// JSON. File descriptors travel with a message as SCM_RIGHTS ancillary data
// on its bytes; the JSON says how many belong to it, so a message and its
// descriptors are always taken together however the stream is split by the
// kernel. Messages are bounded by MaxMessageSize and MaxFDs.
//
// The conversation:
//
//	master -> worker  init   protocol version, shard index, worker count,
//	                         config, secret, TLS session ticket keys,
//	                         listener specs; FDs: the
//	                         listeners in order, then, per peer in
//	                         Init.Peers, its mesh link end and its hand-off
//	                         link end
//	worker -> master  ready  protocol version; the shard accepts connections
//	  or              refused protocol version and reason: the worker will
//	                         not run this init, and exits non-zero
//	master -> worker  peer   a peer restarted; FDs: the fresh mesh link end
//	                         and the fresh hand-off link end
//	master -> worker  drain  stop accepting, finish by the deadline, exit 0
//	master -> worker  stop   close everything and exit now
//	master -> worker  stats  a numbered request for the worker's figures
//	worker -> master  stats  the answer: the same number and a JSON
//	                         snapshot (the admin endpoint's metrics)
//	master -> worker  reload re-read the TLS certificate files (SIGHUP)
//	master -> worker  tickets the TLS session ticket keys after a
//	                         rotation: current first, then the previous
//	                         ones still accepted
//
// A binary upgrade (SIGUSR2) uses a channel of the same kind between the
// old master and the new master it starts (descriptor 3 and the
// environment variable SUBORDINATE_UPGRADE=3 in the new one):
//
//	old -> new        upgrade listener specs, secret, TLS session ticket
//	                         keys; FDs: the
//	                         listening sockets in order
//	new -> old        ready  its workers are all ready: the old master
//	                         drains its own and exits
//
// The protocol version. The first message each side sends carries
// Message.Protocol, and each side checks the other's with CheckProtocol
// before it reads anything else of it. A worker handed an init of another
// version (its binary is not the master's: a file replaced under a running
// master, where the master could not keep its own binary to start workers
// from) answers refused and exits with an error; the master logs the
// refusal. A worker whose ready carries another version is logged and
// killed by the master. Either way the master counts a failure of the
// shard (the restart policy may then give up): mixing versions is never
// silent. ProtocolVersion changes with any change a process of the
// previous version would misread; the framing and the "type" and
// "protocol" fields never change.
//
// A worker exits when its control channel reaches EOF: the master is gone.
// Stream sockets are used, not SOCK_SEQPACKET, because darwin has no
// SOCK_SEQPACKET for Unix sockets.
package ctl
