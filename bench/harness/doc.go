// Package harness runs a real multi-worker Subordinate of your handler
// inside `go test -bench`, and drives load against it with package bench.
//
// The test binary itself is the server: Main, called from TestMain, turns
// the binary into the Subordinate master (and, re-executed by the master,
// into each worker) when Start runs it as a child process, and runs the
// tests otherwise.
//
//	func TestMain(m *testing.M) { harness.Main(m, myFactory) }
//
//	func BenchmarkEcho(b *testing.B) {
//		srv := harness.Start(b, harness.Options{Workers: 4})
//		harness.Run(b, srv, bench.Config{Conns: 32, Size: 128, Keys: 1000})
//	}
//
// Run reports req/s, the latency percentiles and MB/s with b.ReportMetric.
// Start stops the server and every process it started in b.Cleanup.
package harness
