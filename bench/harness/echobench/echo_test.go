// Package echobench benchmarks Subordinate's echo handler with the
// harness, as a user benchmarks their own handler: the test binary is
// re-executed as the master and its workers.
package echobench

import (
	"context"
	"testing"
	"time"

	"github.com/subordinate/subordinate/bench"
	"github.com/subordinate/subordinate/bench/harness"
	"github.com/subordinate/subordinate/server/builtin"
)

func TestMain(m *testing.M) { harness.Main(m, builtin.Echo) }

// TestHarnessServesTheHandler starts a real two-worker server of the
// handler from this test binary and checks every echoed byte.
func TestHarnessServesTheHandler(t *testing.T) {
	srv := harness.Start(t, harness.Options{Workers: 2})
	res, err := bench.Run(context.Background(), bench.Config{Addr: srv.Addr, Conns: 8, Requests: 400, Keys: 50, Size: 256, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 400 || res.ErrorTotal() != 0 {
		t.Fatalf("requests %d, errors %v", res.Requests, res.Errors)
	}
}

// BenchmarkEcho drives ping-pong echo over 2 workers (about half the
// connections forwarded) and reports req/s and latency percentiles.
func BenchmarkEcho(b *testing.B) {
	srv := harness.Start(b, harness.Options{Workers: 2})
	harness.Run(b, srv, bench.Config{Conns: 16, Size: 64, Keys: 1000})
}

// BenchmarkEchoPipelined is BenchmarkEcho with 16 requests in flight per
// connection.
func BenchmarkEchoPipelined(b *testing.B) {
	srv := harness.Start(b, harness.Options{Workers: 2})
	harness.Run(b, srv, bench.Config{Conns: 16, Size: 64, Keys: 1000, Mode: bench.Pipeline, Depth: 16})
}
