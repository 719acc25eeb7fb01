// Command crashworker embeds Subordinate with workers that fail: the test
// of the master's restart policy (supervise_test.go) runs it.
//
// CRASHWORKER=early: every worker exits with status 3 before it reaches
// Serve. CRASHWORKER=late: every worker serves, then exits with status 3
// after 300ms. Either way the master restarts them with back-off and gives
// up after Config.MaxRestarts failures in a row.
package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/subordinate/subordinate/server"
)

func main() {
	if server.IsWorker() {
		switch os.Getenv("CRASHWORKER") {
		case "early":
			os.Exit(3)
		case "late":
			time.AfterFunc(300*time.Millisecond, func() { os.Exit(3) })
		}
	}
	cfg := server.DefaultConfig()
	cfg.Listen = []string{"tcp://127.0.0.1:0"}
	cfg.Workers = 2
	cfg.MaxRestarts = 3
	cfg.RestartBackoff = 10 * time.Millisecond
	cfg.MaxRestartBackoff = 40 * time.Millisecond
	if os.Getenv("CRASHWORKER") == "late" {
		cfg.MaxRestartBackoff = 10 * time.Second // 300ms up is not healthy
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	factory := func(*server.Shard) (server.Handler, error) {
		return nil, errors.New("crashworker serves no handler")
	}
	if err := server.Serve(cfg, factory); err != nil {
		fmt.Fprintln(os.Stderr, "crashworker:", err)
		os.Exit(1)
	}
}
