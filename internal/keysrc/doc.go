// Package keysrc finds a connection's key where the operator said it is
// (--key-from): in Subordinate's own preamble (package frame), in the
// server name of a TLS ClientHello, in the client's address, or in the
// head of the connection's first HTTP/1.x request.
//
// Each finder here is pure: it reads bytes and answers, with a bound on
// what it reads, and never touches a socket. The worker (package server)
// feeds it what the event loop has buffered and routes by its answer.
// Finders that read HTTP or a ClientHello consume nothing: the bytes they
// read are the owner's handler's (or its TLS stack's) as early data.
package keysrc
