package harness

import (
	"testing"

	"github.com/subordinate/subordinate/server"
)

// Main is the TestMain of a package that benchmarks a Subordinate handler:
//
//	func TestMain(m *testing.M) { harness.Main(m, myFactory) }
//
// In the test process it runs the tests (m.Run) and exits. In a process
// Start runs, and in the workers that process's master re-executes, it
// serves factory with server.Serve and never returns.
func Main(m *testing.M, factory server.HandlerFactory) {
	mainWith(m, server.IsWorker, func(c childConfig) error {
		cfg := server.DefaultConfig()
		cfg.Listen = []string{"tcp://" + c.Addr}
		cfg.Workers = c.Workers
		return server.Serve(cfg, factory)
	})
}
