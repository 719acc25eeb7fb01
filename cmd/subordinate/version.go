package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

func init() {
	register("version", command{summary: "print the version, VCS revision and Go version", run: runVersion})
}

// runVersion prints one line: what versionLine makes of this binary's
// build information. It takes no flags.
func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "subordinate version: unexpected argument %q\n", args[0])
		return 2
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	fmt.Fprintln(stdout, versionLine(bi))
	return 0
}

// versionLine describes a build in one line:
//
//	subordinate v1.2.3 revision 0123abcd… (modified) committed 2026-12-01T06:00:00Z go1.26.8 linux/amd64
//
// The module version is "(devel)" for a binary built from a checkout
// (go build) and the tagged version for go install ...@vX.Y.Z. The
// revision and its time are the VCS stamp go build adds in a git
// checkout; without one (-buildvcs=false, a source archive) the line says
// "revision unknown". "(modified)" means the checkout had uncommitted
// changes. bi may be nil (a binary without build information).
func versionLine(bi *debug.BuildInfo) string {
	version, goVersion := "unknown", runtime.Version()
	revision, modified, built := "", false, ""
	if bi != nil {
		if v := bi.Main.Version; v != "" {
			version = v
		}
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			case "vcs.time":
				built = s.Value
			}
		}
	}
	line := "subordinate " + version
	if revision == "" {
		line += " revision unknown"
	} else {
		line += " revision " + revision
		if modified {
			line += " (modified)"
		}
		if built != "" {
			line += " committed " + built
		}
	}
	return line + " " + goVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
}
