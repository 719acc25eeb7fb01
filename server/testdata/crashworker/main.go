// Command crashworker embeds Subordinate with workers that fail: the test
// of the master's restart policy (supervise_test.go) runs it.
//
// CRASHWORKER=early: every worker exits with status 3 before it reaches
// Serve, so it never becomes ready. CRASHWORKER=late: every worker becomes
// ready and serves, then exits with status 3 300ms after its handler was
// made; with MaxRestartBackoff at 10s, 300ms up is not healthy. Either way
// the master restarts them with a doubling back-off; it gives up after
// Config.MaxRestarts failures in a row of workers that were never ready
// (early), never on workers that served (late).
//
// CRASHWORKER=healthy: as late, but MaxRestartBackoff is 40ms, so each
// worker has been up long enough to count as healthy when it fails: its
// failure count is reset every time and the master never gives up.
//
// CRASHWORKER=refuse and CRASHWORKER=oldproto play a worker of another
// control protocol version, without Serve: refuse answers the init with
// refused (a newer worker) and exits 2; oldproto answers ready without a
// version (a worker from before versions) and waits for EOF.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/subordinate/subordinate/internal/ctl"
	"github.com/subordinate/subordinate/server"
)

func main() {
	mode := os.Getenv("CRASHWORKER")
	if server.IsWorker() {
		switch mode {
		case "early":
			os.Exit(3)
		case "refuse", "oldproto":
			os.Exit(otherProtocol(mode))
		}
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
	cfg.Logger = slog.New(server.NewJSONLogHandler(os.Stderr, nil))
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

// otherProtocol is a worker of another control protocol version: it
// receives the init and answers as mode says.
func otherProtocol(mode string) int {
	fd, err := strconv.Atoi(os.Getenv("SUBORDINATE_WORKER"))
	if err != nil {
		return 4
	}
	cc, err := ctl.New(os.NewFile(uintptr(fd), "ctl"))
	if err != nil {
		return 4
	}
	m, err := cc.Receive()
	if err != nil {
		return 4
	}
	ctl.CloseFDs(m)
	if mode == "refuse" {
		_ = cc.Send(&ctl.Message{Type: ctl.TypeRefused, Protocol: ctl.ProtocolVersion + 1, Refused: &ctl.Refused{Reason: "crashworker refuses"}})
		return 2
	}
	_ = cc.Send(&ctl.Message{Type: ctl.TypeReady})
	for {
		if _, err := cc.Receive(); err != nil {
			return 0
		}
	}
}
