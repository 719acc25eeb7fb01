package server

import (
	"runtime"
	"runtime/debug"
)

// BuildInfo is what the binary knows of its own build, from
// runtime/debug.ReadBuildInfo: the admin endpoint reports it
// (subordinate_build_info, /status).
type BuildInfo struct {
	// Version is the main module's version ("v1.2.3", or "(devel)" for
	// a binary built from a work tree).
	Version string `json:"version"`
	// Revision is the VCS revision the binary was built from, with
	// "-dirty" when the tree had changes; empty when the build recorded
	// none (go build -buildvcs=false, go run).
	Revision string `json:"revision,omitempty"`
	// GoVersion is the Go toolchain that built it.
	GoVersion string `json:"go_version"`
}

// ReadBuildInfo returns the build information of the running binary.
func ReadBuildInfo() BuildInfo {
	b := BuildInfo{Version: "(unknown)", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if bi.Main.Version != "" {
		b.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && b.Revision != "" {
		b.Revision += "-dirty"
	}
	return b
}
