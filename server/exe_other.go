//go:build !linux

package server

import (
	"fmt"
	"log/slog"
	"os"
)

// openMasterBinary resolves the path of this program (os.Executable);
// workers are started from that path.
//
// Limitation: unlike on Linux, the master does not keep its own binary
// open to start workers from, so a worker restarted after a deploy
// replaced the file at that path runs the new file under the old master.
// The control protocol's version check refuses a worker of another
// protocol version (it exits, the master logs it and counts a failure),
// but a new binary of the same protocol version runs. darwin has no
// fexecve; FreeBSD has fexecve(2) but os/exec cannot use it, and its
// /dev/fd/N paths name every open file only with fdescfs mounted. Compiled
// here, tested on Linux only.
func openMasterBinary(log *slog.Logger) (*masterBinary, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to start workers: %w", err)
	}
	return &masterBinary{path: exe, name: exe}, nil
}

// nameWorker does nothing here: a worker is exec'd from the master's path
// and named after it.
func nameWorker() {}
