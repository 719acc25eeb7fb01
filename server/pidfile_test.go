package server

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestPidFile: the file is written whole (no temporary file left beside
// it), replaced whole, and removed only by the pid it names.
func TestPidFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub.pid")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := writePidFile(path, 123); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "123\n" {
		t.Fatalf("pid file holds %q, %v; want \"123\\n\"", b, err)
	}
	if err := writePidFile(path, 456); err != nil {
		t.Fatal(err)
	}
	if pid, err := readPidFile(path); err != nil || pid != 456 {
		t.Fatalf("after a rewrite the pid file names %d, %v; want 456", pid, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("%d files in the folder, want the pid file alone", len(ents))
	}
	removePidFile(path, 123, log) // another master's: kept
	if pid, err := readPidFile(path); err != nil || pid != 456 {
		t.Fatalf("removing as 123 touched the file of 456: %d, %v", pid, err)
	}
	removePidFile(path, 456, log)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the pid file is still there after its master removed it: %v", err)
	}
	removePidFile(path, 456, log) // gone already: nothing to do
	if err := writePidFile(filepath.Join(dir, "no", "such", "dir.pid"), 1); err == nil {
		t.Fatal("writing into a folder that does not exist succeeded")
	}
}
