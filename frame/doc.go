// Package frame encodes and decodes everything Subordinate puts on the wire:
// the client preamble that names a connection's key (in the line or the
// binary encoding), the direct preamble that names a shard and proves
// knowledge of the shared secret, the one-line error reply, and the stream
// header a worker sends to the owning worker when it forwards a connection.
//
// docs/PROTOCOL.md is the byte-level specification; this package is its
// reference implementation. It does no I/O of its own except
// ReadStreamHeader, which reads from an io.Reader it is given.
//
// The preamble Decoder is incremental and made for an event loop: it is fed
// whatever each read returned, never consumes a byte past the preamble, and
// after Reset it can decode the next connection's preamble without
// allocating.
package frame
