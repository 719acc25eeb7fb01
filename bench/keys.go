package bench

import (
	"math/rand/v2"
	"strconv"
)

// keyPicker draws key indexes from the configured distribution.
type keyPicker struct {
	rng  *rand.Rand
	zipf *rand.Zipf
	n    int
}

func newKeyPicker(cfg *Config, rng *rand.Rand) keyPicker {
	k := keyPicker{rng: rng, n: cfg.Keys}
	if cfg.Dist == Zipf {
		k.zipf = rand.NewZipf(rng, cfg.ZipfS, 1, uint64(cfg.Keys-1))
	}
	return k
}

// next returns a key index in [0, Keys).
func (k *keyPicker) next() int {
	if k.zipf != nil {
		return int(k.zipf.Uint64())
	}
	return k.rng.IntN(k.n)
}

// KeyName returns the name of key i: "k" followed by i in decimal.
func KeyName(i int) string { return string(appendKey(nil, i)) }

func appendKey(dst []byte, i int) []byte {
	return strconv.AppendInt(append(dst, 'k'), int64(i), 10)
}
