package shard

import "github.com/zeebo/xxh3"

// NodeSeed is the xxh3 seed of NodeHash: the ASCII bytes "node".
const NodeSeed = 0x6e6f6465

// NodeHash returns the 64-bit xxh3 hash of key with seed NodeSeed
// (XXH3_64bits_withSeed in the reference implementation). It places a key
// on a node; Hash, with seed 0, places it on a worker of that node. The two
// are independent, so the keys of one node spread over all its workers.
func NodeHash(key []byte) uint64 { return xxh3.HashSeed(key, NodeSeed) }

// Place returns the node in [0, nodes) and the worker in [0, workers) of
// that node that own key, in a cluster of nodes nodes with workers workers
// each: Jump(NodeHash(key), nodes) and Jump(Hash(key), workers).
//
// With one node, the worker is Owner(key, workers): a single machine maps
// keys as it always has. When nodes grows to nodes+1 (a node appended at
// the end), about 1/(nodes+1) of the keys move, all to the new node, and
// every other key keeps both its node and its worker. Every node must run
// the same number of workers.
//
// Place panics if nodes or workers is out of [1, MaxShards].
func Place(key []byte, nodes, workers int) (node, worker int) {
	if nodes == 1 {
		return 0, Owner(key, workers) // Jump(_, 1) is 0: skip the second hash
	}
	return Jump(NodeHash(key), nodes), Owner(key, workers)
}
