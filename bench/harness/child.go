package harness

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// envChild marks a test binary started by Start as the server; it holds
// the childConfig as JSON. Workers the master re-executes inherit it.
// It carries no secret.
const envChild = "SUBORDINATE_HARNESS"

// childConfig is what Start tells the server process.
type childConfig struct {
	Addr    string `json:"addr"`
	Workers int    `json:"workers"`
}

// mainWith is Main with the server made a parameter: isWorker reports
// whether this process is a worker the master started, and serve runs the
// master or the worker and returns only on failure or at the end.
func mainWith(m *testing.M, isWorker func() bool, serve func(childConfig) error) {
	raw, isChild := os.LookupEnv(envChild)
	if !isChild && !isWorker() {
		os.Exit(m.Run())
	}
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "harness: bad %s: %v\n", envChild, err)
		os.Exit(2)
	}
	if err := serve(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "harness: serve: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}
