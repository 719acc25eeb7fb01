package harness

import (
	"context"
	"testing"
	"time"

	"github.com/subordinate/subordinate/bench"
)

// Run drives cfg against srv for b.N requests (cfg.Addr is set to
// srv.Addr; cfg.Requests to b.N) and reports, besides ns/op and MB/s
// (b.SetBytes of cfg.Size): req/s, p50-µs, p99-µs, p99.9-µs and max-µs.
// Errors of any kind fail the benchmark. It returns the result.
func Run(b *testing.B, srv *Server, cfg bench.Config) *bench.Result {
	b.Helper()
	cfg.Addr = srv.Addr
	cfg.Requests = int64(b.N)
	cfg.Duration = 0
	if err := cfg.Verify(); err != nil {
		b.Fatal(err)
	}
	size := cfg.Size
	if size == 0 {
		size = bench.DefaultConfig().Size
	}
	b.SetBytes(int64(size))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ResetTimer()
	res, err := bench.Run(ctx, cfg)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if n := res.ErrorTotal(); n > 0 {
		b.Errorf("harness: %d errors: %v", n, res.Errors)
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(res.RPS(), "req/s")
	b.ReportMetric(us(res.Percentile(50)), "p50-µs")
	b.ReportMetric(us(res.Percentile(99)), "p99-µs")
	b.ReportMetric(us(res.Percentile(99.9)), "p99.9-µs")
	b.ReportMetric(us(res.Max()), "max-µs")
	return res
}
