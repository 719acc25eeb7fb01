// Package shard is key to shard: the mapping every client can compute.
//
// The mapping is the contract every client can compute on its own: the owner
// of a key over n shards is Jump(Hash(key), n), where Hash is the 64-bit xxh3
// hash of the key's bytes with seed 0 and Jump is the jump consistent hash of
// Lamping and Veach (2014). docs/PROTOCOL.md gives the algorithm and a table
// of test vectors; TestVectors keeps that table and this code in agreement.
//
// Across several machines (nodes), Place puts a key on a node with a second,
// independent hash (NodeHash) and on that node's worker with Owner, so that
// one node maps keys exactly as a single machine does (docs/PROTOCOL.md
// section 5.2, checked by TestNodeVectors).
package shard
