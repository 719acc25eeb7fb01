//go:build race

package proctest

// RaceEnabled reports whether the test binary runs with the race
// detector; tests build the binaries they run the same way.
const RaceEnabled = true
