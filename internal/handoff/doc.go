// Package handoff passes client sockets between the workers of one server.
//
// The master makes one Unix SOCK_SEQPACKET socketpair per pair of workers
// and gives each worker its end, as it does the mesh links. A worker that
// accepted a plain connection whose key another shard owns sends the
// socket itself to the owner in one datagram: the descriptor as an
// SCM_RIGHTS control message, and a frame.Handoff message (key, listener,
// the bytes read past the preamble) as the data. The sender then closes
// its descriptor and forgets the connection; the owner adopts the socket
// into its own event loop, and from then on the connection is the owner's
// as if the owner had accepted it.
//
// Link is one end of such a socketpair; Links holds a worker's links by
// peer index, comes and goes with the peers, and lets a sender wait for a
// peer that is restarting. docs/MESH.md has the design, docs/PROTOCOL.md
// the message.
package handoff
