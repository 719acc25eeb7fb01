package shard

import "github.com/zeebo/xxh3"

// Hash returns the 64-bit xxh3 hash of key with seed 0 (XXH3_64bits in the
// reference implementation).
func Hash(key []byte) uint64 { return xxh3.Hash(key) }

// Jump returns the bucket in [0, n) that the jump consistent hash of
// Lamping and Veach (https://arxiv.org/abs/1406.2294) assigns to h. When n
// grows to n+1, only about 1/(n+1) of all hashes move, all to bucket n.
//
// Jump panics if n < 1 or n > MaxShards.
func Jump(h uint64, n int) int {
	if n < 1 || n > MaxShards {
		panic("shard: Jump with n out of range")
	}
	b, j := int64(-1), int64(0)
	for j < int64(n) {
		b = j
		h = h*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((h>>33)+1)))
	}
	return int(b)
}

// MaxShards is the largest shard count Jump and Owner accept: shard indexes
// fit in 31 bits, as in the reference algorithm, and on every platform's int.
const MaxShards = 1<<31 - 1

// Owner returns the shard in [0, n) that owns key: Jump(Hash(key), n).
//
// Owner panics if n < 1 or n > MaxShards.
func Owner(key []byte, n int) int { return Jump(Hash(key), n) }
