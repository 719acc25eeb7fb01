// Command crashworker embeds Subordinate with workers that fail: the test
// of the master's restart policy (supervise_test.go) runs it.
//
// CRASHWORKER=early: every worker exits with status 3 before it reaches
// Serve, so it never becomes ready. CRASHWORKER=late: every worker becomes
// ready and serves, then exits with status 3 300ms after its handler was
// made; with MaxRestartBackoff at 10s, 300ms up is not healthy. Either way
// the master restarts them with back-off and gives up after
// Config.MaxRestarts failures in a row.
//
// CRASHWORKER=healthy: as late, but MaxRestartBackoff is 40ms, so each
// worker has been up long enough to count as healthy when it fails: its
// failure count is reset every time and the master never gives up.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/subordinate/subordinate/server"
)

func main() {
	mode := os.Getenv("CRASHWORKER")
	if server.IsWorker() && mode == "early" {
		os.Exit(3)
	}
	cfg := server.DefaultConfig()
	cfg.Listen = []string{"tcp://127.0.0.1:0"}
	cfg.Workers = 2
	cfg.MaxRestarts = 3
	cfg.RestartBackoff = 10 * time.Millisecond
	cfg.MaxRestartBackoff = 40 * time.Millisecond
	if mode == "late" {
		cfg.MaxRestartBackoff = 10 * time.Second // 300ms up is not healthy
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	factory := func(s *server.Shard) (server.Handler, error) {
		// The factory runs on the shard's loop just before the worker
		// tells the master it is ready; the timer fires on that loop
		// once it serves.
		s.AfterFunc(300*time.Millisecond, func() { os.Exit(3) })
		return server.BaseHandler{}, nil
	}
	if err := server.Serve(cfg, factory); err != nil {
		fmt.Fprintln(os.Stderr, "crashworker:", err)
		os.Exit(1)
	}
}
