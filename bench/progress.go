package bench

import "time"

// Progress is a snapshot of a run in progress, passed to Config.Progress.
type Progress struct {
	// Elapsed is the time since the run started, warmup included.
	Elapsed time.Duration
	// Warmup is true while the warmup runs.
	Warmup bool
	// Requests is the number of requests counted so far (none during
	// the warmup).
	Requests int64
	// RPS is the rate of requests over the last interval.
	RPS float64
	// Errors is the number of errors so far, all kinds.
	Errors int64
}
