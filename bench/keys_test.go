package bench

import (
	"math/rand/v2"
	"testing"
)

func TestKeyPickerRange(t *testing.T) {
	for _, d := range []Dist{Uniform, Zipf} {
		for _, n := range []int{1, 2, 1000} {
			cfg := Config{Keys: n, Dist: d}
			cfg.setDefaults()
			k := newKeyPicker(&cfg, rand.New(rand.NewPCG(1, 2)))
			seen := map[int]bool{}
			for range 5000 {
				i := k.next()
				if i < 0 || i >= n {
					t.Fatalf("%v over %d keys drew %d", d, n, i)
				}
				seen[i] = true
			}
			if n <= 2 && len(seen) != n {
				t.Errorf("%v over %d keys drew only %v", d, n, seen)
			}
		}
	}
	if KeyName(42) != "k42" {
		t.Errorf("KeyName(42) = %q", KeyName(42))
	}
}
