package bench

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1µs to histMax (longer ones
// are recorded as histMax), with three significant figures: about 140 KiB
// of counts per connection.
const (
	histMin     = 1
	histMax     = int64(100 * time.Second / time.Microsecond)
	histSigFigs = 3
)

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, histSigFigs)
}

// Result is what a run measured. Only requests completed after the warmup
// count; errors count for the whole run.
type Result struct {
	// Config is the profile that ran, defaults filled in.
	Config Config
	// Requests is the number of requests echoed and verified.
	Requests int64
	// Duration is the measured time: from the end of the warmup to the
	// end of the run.
	Duration time.Duration
	// Latency holds the latency of every counted request, in
	// microseconds: from the write of the request (in Connect mode, from
	// the dial) to the last byte of its echo.
	Latency *hdrhistogram.Histogram
	// Errors counts the errors by kind (Kind* constants); kinds that did
	// not occur are absent.
	Errors map[string]int64
	// Reasons holds, for each kind in Errors, the first error of that
	// kind as text: the server's "-ERR ..." line, what came back instead
	// of an echo, why a TLS handshake failed. Nil without errors.
	Reasons map[string]string
	// TLSHandshakes counts the TLS handshakes completed while measuring,
	// and TLSResumed those of them that resumed a session
	// (Config.TLSResume). Zero without TLS.
	TLSHandshakes, TLSResumed int64
}

// RPS is requests per second.
func (r *Result) RPS() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

// MBps is payload throughput in megabytes (10^6) per second, one way: the
// bytes echoed back.
func (r *Result) MBps() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) * float64(r.Config.Size) / r.Duration.Seconds() / 1e6
}

// Percentile returns the latency at percentile q (0 < q <= 100), or 0
// when nothing was measured.
func (r *Result) Percentile(q float64) time.Duration {
	if r.Latency == nil || r.Latency.TotalCount() == 0 {
		return 0
	}
	return time.Duration(r.Latency.ValueAtQuantile(q)) * time.Microsecond
}

// Max returns the largest latency measured.
func (r *Result) Max() time.Duration {
	if r.Latency == nil || r.Latency.TotalCount() == 0 {
		return 0
	}
	return time.Duration(r.Latency.Max()) * time.Microsecond
}

// ErrorTotal is the sum of Errors.
func (r *Result) ErrorTotal() int64 {
	var n int64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// Report is the flat summary of a Result, with the JSON names that
// `subordinate bench --json` prints and scripts parse.
type Report struct {
	Mode  string `json:"mode"`
	Frame string `json:"frame"`
	// KeyFrom is Config.KeyFrom as `serve --key-from` spells it; absent
	// for the preamble (frame).
	KeyFrom    string           `json:"key_from,omitempty"`
	Conns      int              `json:"conns"`
	Size       int              `json:"size"`
	Keys       int              `json:"keys"`
	Dist       string           `json:"dist"`
	Depth      int              `json:"depth"`
	DurationS  float64          `json:"duration_s"`
	Requests   int64            `json:"requests"`
	RPS        float64          `json:"rps"`
	MBps       float64          `json:"mbps"`
	P50us      float64          `json:"p50_us"`
	P90us      float64          `json:"p90_us"`
	P99us      float64          `json:"p99_us"`
	P999us     float64          `json:"p999_us"`
	MaxUs      float64          `json:"max_us"`
	Errors     map[string]int64 `json:"errors"`
	ErrorTotal int64            `json:"error_total"`
	// Reasons is Result.Reasons: the first error of each kind, as text.
	Reasons map[string]string `json:"reasons,omitempty"`
	// TLSHandshakes and TLSResumed are Result's: TLS handshakes while
	// measuring, and how many resumed a session. Absent without TLS.
	TLSHandshakes int64 `json:"tls_handshakes,omitempty"`
	TLSResumed    int64 `json:"tls_resumed,omitempty"`
}

// Report returns the summary of r. Its Errors map is never nil.
func (r *Result) Report() Report {
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	errs := make(map[string]int64, len(r.Errors))
	for k, v := range r.Errors {
		errs[k] = v
	}
	return Report{
		Mode: r.Config.Mode.String(), Frame: r.Config.Frame.String(), KeyFrom: keyFromName(r.Config.KeyFrom),
		Conns: r.Config.Conns, Size: r.Config.Size, Keys: r.Config.Keys,
		Dist: r.Config.Dist.String(), Depth: r.Config.Depth,
		DurationS: r.Duration.Seconds(), Requests: r.Requests,
		RPS: r.RPS(), MBps: r.MBps(),
		P50us: us(r.Percentile(50)), P90us: us(r.Percentile(90)),
		P99us: us(r.Percentile(99)), P999us: us(r.Percentile(99.9)),
		MaxUs: us(r.Max()), Errors: errs, ErrorTotal: r.ErrorTotal(), Reasons: r.Reasons,
		TLSHandshakes: r.TLSHandshakes, TLSResumed: r.TLSResumed,
	}
}
