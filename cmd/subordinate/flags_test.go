package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/subordinate/subordinate/shard"
)

func runArgs(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return out.String(), errb.String(), code
}

// TestFlagErrors: a bad value of every kind of flag (durations, whole
// numbers, numbers, booleans, choices, addresses) names the flag and says
// what it expects, exits 2 and prints nothing on stdout.
func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--drain-timeout", "10"}, "--drain-timeout 10: want a duration such as 10s"},
		{[]string{"serve", "--preamble-timeout=5 seconds"}, "--preamble-timeout 5 seconds: want a duration such as 10s"},
		{[]string{"serve", "--drain-timeout"}, "--drain-timeout needs a value: a duration such as 10s"},
		{[]string{"serve", "--workers", "four"}, "--workers four: want a whole number such as"},
		{[]string{"serve", "--max-key", "1k"}, "--max-key 1k: want a whole number such as 1024"},
		{[]string{"serve", "--max-key", "99999999999999999999"}, "--max-key 99999999999999999999: out of range: want a whole number"},
		{[]string{"serve", "--crash-on-panic=yes"}, "--crash-on-panic yes: want true or false"},
		{[]string{"serve", "--frame", "xml"}, `frame "xml": want line or binary`},
		{[]string{"serve", "--tls-ticket-rotation", "-1h"}, "TLS ticket key rotation -1h0m0s: want > 0"},
		{[]string{"serve", "--forward", "teleport"}, `forward "teleport": want handoff or relay`},
		{[]string{"serve", "--forward-tls", "copy"}, `forward TLS "copy": want auto, handoff, splice or relay`},
		{[]string{"serve", "--nodes", "10.0.0.1:7946,10.0.0.2:7946"}, "--cluster-listen is required with --nodes"},
		{[]string{"serve", "--cluster-listen", "tls://0.0.0.0:7946"}, "without a node list: give --nodes or --nodes-file"},
		{[]string{"serve", "--nodes", "a:7946", "--cluster-listen", "tcp://0.0.0.0:7946", "--cluster-cert", "c", "--cluster-key", "k", "--cluster-ca", "ca"}, "want tls://HOST:PORT"},
		{[]string{"serve", "--nodes", "a:7946,a:7946", "--node-index", "0", "--cluster-listen", "tls://127.0.0.1:0", "--cluster-cert", "c", "--cluster-key", "k", "--cluster-ca", "ca"}, `nodes 0 and 1 are both "a:7946"`},
		{[]string{"serve", "--nodes", "a:7946,b:7946", "--node-index", "2", "--cluster-listen", "tls://127.0.0.1:0", "--cluster-cert", "c", "--cluster-key", "k", "--cluster-ca", "ca"}, `--node-index "2": want 0 to 1, or from-hostname`},
		{[]string{"serve", "--nodes", "a:7946,b:7946", "--node-index", "0", "--cluster-listen", "tls://127.0.0.1:0", "--cluster-cert", "/nonexistent/c", "--cluster-key", "k", "--cluster-ca", "ca"}, "cluster certificate"},
		{[]string{"serve", "--handler", "nope"}, `unknown handler "nope" (have: chat, echo`},
		{[]string{"serve", "--log-level", "loud"}, `log level "loud": want debug, info, warn or error`},
		{[]string{"serve", "--log-format", "xml"}, `log format "xml": want text or json`},
		{[]string{"serve", "--listen", "tcp://h"}, "want tcp://HOST:PORT"},
		{[]string{"serve", "--listen", "unix:///tmp/x.sock?mode=999"}, "want octal permission bits 0001 to 0777, such as 0660"},
		{[]string{"serve", "--bogus"}, "flag provided but not defined: -bogus (no flag --bogus)"},
		{[]string{"bench", "--duration", "3"}, "--duration 3: want a duration such as 10s"},
		{[]string{"bench", "--conns", "many"}, "--conns many: want a whole number such as 50"},
		{[]string{"bench", "--requests", "1e6"}, "--requests 1e6: want a whole number"},
		{[]string{"bench", "--size", "1KiB"}, "--size 1KiB: want a whole number such as 64"},
		{[]string{"bench", "--zipf-s", "steep"}, "--zipf-s steep: want a number such as 1.1"},
		{[]string{"bench", "--tls=maybe"}, "--tls maybe: want true or false"},
		{[]string{"bench", "--mode", "burst"}, `mode "burst" (want pingpong, pipeline, connect)`},
		{[]string{"bench", "--dist", "normal"}, `dist "normal" (want uniform, zipf)`},
		{[]string{"bench", "--frame", "xml"}, `frame "xml" (want line, binary, direct, direct-binary)`},
		{[]string{"owner", "--workers", "two", "k"}, "--workers two: want a whole number"},
	} {
		out, errs, code := runArgs(tc.args...)
		if code != 2 || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errs, tc.want)
		}
	}
}

// TestHelpToStdout: help asked for is output: on stdout, exit 0, and
// nothing on stderr. A missing command is an error: usage on stderr,
// exit 2.
func TestHelpToStdout(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"},
		{"serve", "-h"}, {"serve", "--help"},
		{"owner", "-h"}, {"owner", "--help"},
		{"bench", "-h"}, {"bench", "--help"},
	} {
		out, errs, code := runArgs(args...)
		want := "usage: subordinate"
		if len(args) > 1 {
			want += " " + args[0]
		}
		if code != 0 || errs != "" || !strings.Contains(out, want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 0 and %q on stdout only", args, code, out, errs, want)
		}
	}
	if out, errs, code := runArgs(); code != 2 || out != "" || !strings.Contains(errs, "usage: subordinate") {
		t.Errorf("no command: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// The built binary, as a shell runs it: `subordinate serve --help | less`.
	cmd := exec.Command(binary, "serve", "--help")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "-drain-timeout duration") || stderr.Len() != 0 {
		t.Errorf("serve --help: %v, stdout %q, stderr %q", err, out, stderr.String())
	}
}

// TestOwnerDefaultWorkers: without --workers, owner uses serve's default
// (one worker per CPU), says so on stderr, and prints only KEY<TAB>SHARD
// on stdout.
func TestOwnerDefaultWorkers(t *testing.T) {
	out, errs, code := runOwnerArgs(t, "", "lobby", "user:42")
	n := runtime.NumCPU()
	want := fmt.Sprintf("lobby\t%d\nuser:42\t%d\n", shard.Owner([]byte("lobby"), n), shard.Owner([]byte("user:42"), n))
	if code != 0 || out != want {
		t.Errorf("owner lobby user:42: exit %d, stdout %q, want %q", code, out, want)
	}
	if wantErr := fmt.Sprintf("%d workers, one per CPU", n); !strings.Contains(errs, wantErr) {
		t.Errorf("stderr %q, want it to say %q", errs, wantErr)
	}
	if _, errs, _ := runOwnerArgs(t, "", "--workers", "3", "lobby"); errs != "" {
		t.Errorf("with --workers: stderr %q, want nothing", errs)
	}
}
