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
//	master -> worker  init   shard index, worker count, config, secret,
//	                         listener specs; FDs: the listeners in order,
//	                         then, per peer in Init.Peers, its mesh link end
//	                         and its hand-off link end
//	worker -> master  ready  the shard accepts connections
//	master -> worker  peer   a peer restarted; FDs: the fresh mesh link end
//	                         and the fresh hand-off link end
//	master -> worker  drain  stop accepting, finish by the deadline, exit 0
//	master -> worker  stop   close everything and exit now
//
// A worker exits when its control channel reaches EOF: the master is gone.
// Stream sockets are used, not SOCK_SEQPACKET, because darwin has no
// SOCK_SEQPACKET for Unix sockets.
package ctl
