// Package tls13 carries on, in another process, a TLS 1.3 connection
// whose handshake crypto/tls did: the record layer (RFC 8446, section 5),
// key updates (section 4.6.3) and alerts (section 6), from the two
// traffic secrets and sequence numbers the handshake left.
//
// A worker that terminated a client's TLS connection and then read, in
// the decrypted stream, a key another worker owns hands the socket to the
// owner with the connection's State (Export); the owner serves the
// connection with a Conn made from it (New), on its own event loop, as if
// it had done the handshake. crypto/tls has no API to export or import a
// session's keys (only its key log, which lacks the sequence numbers), so
// Export reads them from the tls.Conn by reflection: its tests pin the
// fields it reads, and it refuses, rather than guesses, when crypto/tls
// changes.
//
// Only what a server needs after its handshake is here: application
// data, the client's KeyUpdate (answered when it asks), close_notify and
// alerts. No handshake, no session tickets, no post-handshake
// authentication, no TLS 1.2.
package tls13
