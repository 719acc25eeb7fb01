// Module compare is the side-by-side comparison rig behind BENCHMARKS.md:
// its runner, chart, peer servers and results. It is a module of its own,
// nested in the repository (as tableflip does with its examples), so that
// `go test ./...` at the root tests the product only; .ci/run tests this
// module separately. It builds against the Subordinate in this checkout.
module github.com/subordinate/subordinate/bench/compare

go 1.26.0

require (
	github.com/panjf2000/gnet/v2 v2.9.7
	github.com/subordinate/subordinate v0.0.0-00010101000000-000000000000
)

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0 // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/klauspost/cpuid/v2 v2.2.10 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/panjf2000/ants/v2 v2.11.3 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	github.com/xtaci/smux v1.5.58 // indirect
	github.com/zeebo/xxh3 v1.1.0 // indirect
	go.uber.org/multierr v1.11.0 // indirect
	go.uber.org/zap v1.27.0 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sync v0.22.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/term v0.48.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	gopkg.in/natefinch/lumberjack.v2 v2.2.1 // indirect
)

// The runner and tlscmp build the subordinate command of this checkout
// (go build github.com/subordinate/subordinate/cmd/subordinate): a tool
// of this module, so that its dependencies are in go.sum.
tool github.com/subordinate/subordinate/cmd/subordinate

replace github.com/subordinate/subordinate => ../..
