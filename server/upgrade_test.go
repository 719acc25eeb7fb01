package server

import (
	"os"
	"path/filepath"
	"testing"
)

// TestUpgradeBinaryPath: SIGUSR2 runs argv[0] made absolute against the
// folder the master started in (a link stays a link), a bare name found
// in PATH, and the executable os.Executable found when neither works.
func TestUpgradeBinaryPath(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "current")
	if err := os.Symlink(prog, link); err != nil {
		t.Fatal(err)
	}
	exe := &masterBinary{name: "/fallback/subordinate"}
	t.Chdir(dir)
	t.Setenv("PATH", dir)
	cases := map[string]string{
		"./prog":      prog,
		link:          link,
		"current":     link,
		"not-in-path": "/fallback/subordinate",
	}
	for argv0, want := range cases {
		if got := upgradeBinaryPath(argv0, exe); got != want {
			t.Errorf("upgradeBinaryPath(%q) = %q, want %q", argv0, got, want)
		}
	}
}
