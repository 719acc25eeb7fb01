// Package batchconn gathers the writes of a connection's one writer (a
// smux session's send loop) into batches: one system call, and over TLS
// one run of records, for every frame queued while the previous batch
// was being written. The links between workers (the mesh) and between
// nodes use it.
package batchconn
