package main

import (
	"debug/buildinfo"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionCommand: "subordinate version" and "subordinate --version"
// print the same single line, and it names what the binary's own build
// information holds: its module version, its VCS revision (or "revision
// unknown" when the build has none) and its Go version.
func TestVersionCommand(t *testing.T) {
	t.Parallel()
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	want := versionLine(bi)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := exec.Command(binary, args...).Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		got := strings.TrimSuffix(string(out), "\n")
		if strings.Contains(got, "\n") {
			t.Fatalf("%v printed several lines: %q", args, out)
		}
		if got != want {
			t.Fatalf("%v printed %q, want %q (from the binary's build info)", args, got, want)
		}
		if !regexp.MustCompile(`^subordinate \S+ revision ([0-9a-f]{40}|unknown)\b.* go\d`).MatchString(got) {
			t.Fatalf("%v printed %q: not a version line", args, got)
		}
	}
	if out, err := exec.Command(binary, "version", "extra").CombinedOutput(); err == nil {
		t.Fatalf("version with an argument succeeded: %q", out)
	}
}

// TestVersionLine: the line of a build with a VCS stamp names the
// revision, whether the checkout was modified, and the commit time; one
// without says the revision is unknown.
func TestVersionLine(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
		{Key: "vcs.time", Value: "2026-12-01T06:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	platform := " " + runtime.GOOS + "/" + runtime.GOARCH
	cases := []struct {
		bi   *debug.BuildInfo
		want string
	}{
		{stamped, "subordinate v1.2.3 revision " + rev + " (modified) committed 2026-12-01T06:00:00Z go1.26.8" + platform},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "subordinate (devel) revision unknown go1.26.8" + platform},
		{nil, "subordinate unknown revision unknown " + runtime.Version() + platform},
	}
	for _, c := range cases {
		if got := versionLine(c.bi); got != c.want {
			t.Errorf("versionLine = %q, want %q", got, c.want)
		}
	}
}
