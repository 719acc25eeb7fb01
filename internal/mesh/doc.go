// Package mesh is the long-lived smux sessions between the workers of one
// server, and the relay that copies a connection over a stream.
//
// A Mesh holds one smux (protocol version 2) session per peer worker, over
// a socketpair the master made and passed down. Either end opens streams;
// each stream carries one connection that could not be handed to its owner
// as a socket (a TLS connection whose state lives in the accepting worker,
// or any connection in relay mode). Relay copies bytes both ways between a
// client and a stream with bounded buffers and passes half-close through.
//
// docs/MESH.md describes the sessions, their bounds and what happens when a
// peer dies.
package mesh
