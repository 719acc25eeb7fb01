package shard

import (
	"encoding/binary"
	"fmt"
	"testing"
)

// TestJumpReference checks Jump against buckets computed by the reference
// C++ code of Lamping and Veach, for n = 1, 2, ... (the same vectors the Go
// port github.com/dgryski/go-jump tests against).
func TestJumpReference(t *testing.T) {
	for _, c := range []struct {
		h    uint64
		want []int
	}{
		{0, []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{1, []int{0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 17, 17}},
		{0xdeadbeef, []int{0, 1, 2, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 16, 16, 16}},
		{0x0ddc0ffeebadf00d, []int{0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 15, 15, 15, 15}},
	} {
		for i, want := range c.want {
			if got := Jump(c.h, i+1); got != want {
				t.Errorf("Jump(%#x, %d) = %d, want %d", c.h, i+1, got, want)
			}
		}
	}
}

func TestJumpRange(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 64, 1000, MaxShards} {
		for i := uint64(0); i < 2000; i++ {
			h := i * 0x9e3779b97f4a7c15
			if b := Jump(h, n); b < 0 || b >= n {
				t.Fatalf("Jump(%#x, %d) = %d, out of range", h, n, b)
			}
		}
	}
}

// TestJumpMonotone checks the property that makes the hash consistent: when
// the shard count grows from n to n+1, a key either stays or moves to the
// new shard n.
func TestJumpMonotone(t *testing.T) {
	for i := uint64(0); i < 5000; i++ {
		h := Hash(binary.BigEndian.AppendUint64(nil, i))
		prev := Jump(h, 1)
		for n := 2; n <= 70; n++ {
			b := Jump(h, n)
			if b != prev && b != n-1 {
				t.Fatalf("hash %#x: n=%d gives %d, n=%d gave %d", h, n, b, n-1, prev)
			}
			prev = b
		}
	}
}

// TestJumpBalance checks that keys spread over the shards: each of 8 shards
// gets its share of 80000 keys within 5% (about 9 standard deviations).
func TestJumpBalance(t *testing.T) {
	const n, keys = 8, 80000
	var counts [n]int
	for i := 0; i < keys; i++ {
		counts[Owner(fmt.Appendf(nil, "key-%d", i), n)]++
	}
	for s, c := range counts {
		if c < keys/n*95/100 || c > keys/n*105/100 {
			t.Errorf("shard %d got %d of %d keys", s, c, keys)
		}
	}
}

func TestJumpPanics(t *testing.T) {
	for _, n := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Jump(1, %d) did not panic", n)
				}
			}()
			Jump(1, n)
		}()
	}
}

func benchmarkOwner(b *testing.B, size int) {
	key := make([]byte, size)
	for i := range key {
		key[i] = byte(i)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		key[0] = byte(i)
		_ = Owner(key, 64)
	}
}

func BenchmarkOwner16(b *testing.B)  { benchmarkOwner(b, 16) }
func BenchmarkOwner256(b *testing.B) { benchmarkOwner(b, 256) }

func BenchmarkHash16(b *testing.B) {
	key := make([]byte, 16)
	b.ReportAllocs()
	for b.Loop() {
		_ = Hash(key)
	}
}
