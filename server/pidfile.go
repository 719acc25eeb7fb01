package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
)

// writePidFile writes pid and a newline to path atomically: into a
// temporary file of the same folder, then renamed over path, so that a
// reader (a service manager, a script) never sees a half-written or
// empty file, and a master that replaces another's file (an upgrade)
// replaces it whole.
func writePidFile(path string, pid int) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.WriteString(strconv.Itoa(pid) + "\n")
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid file %s: %w", path, err)
	}
	return nil
}

// readPidFile returns the pid in path, or an error.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	return pid, nil
}

// removePidFile removes path if it still holds pid: after a binary
// upgrade it names the new master, which the old one must leave alone.
func removePidFile(path string, pid int, log *slog.Logger) {
	got, err := readPidFile(path)
	switch {
	case err != nil:
		if !os.IsNotExist(err) {
			log.Warn("cannot read the pid file to remove it", "pidfile", path, "err", err)
		}
	case got != pid:
		log.Info("the pid file names another master; leaving it", "pidfile", path, "its_pid", got)
	default:
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			log.Warn("cannot remove the pid file", "pidfile", path, "err", err)
		}
	}
}
