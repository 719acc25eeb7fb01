package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/subordinate/subordinate/shard"
)

func runOwnerArgs(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	old := ownerStdin
	ownerStdin = strings.NewReader(stdin)
	defer func() { ownerStdin = old }()
	var out, errb bytes.Buffer
	code := run(append([]string{"owner"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// TestOwner checks the command against rows of the test-vector table in
// docs/PROTOCOL.md ("a" is 1 of 8, 14 of 64; "user:42" is 25 of 64).
func TestOwner(t *testing.T) {
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"--workers", "8", "a", "user:42"}, "a\t1\nuser:42\t1\n"},
		{"", []string{"--workers=64", "a", "user:42", "room/lobby"}, "a\t14\nuser:42\t25\nroom/lobby\t21\n"},
		{"", []string{"-workers", "1", "anything"}, "anything\t0\n"},
		{"", []string{"--workers", "64", "--hex", "00", "fffefdfc"}, "00\t9\nfffefdfc\t56\n"},
		{"a\r\nuser:42\n", []string{"--workers", "64"}, "a\t14\nuser:42\t25\n"},
		{"", []string{"--workers", "3", "--", "-dash"}, fmt.Sprintf("-dash\t%d\n", shard.Owner([]byte("-dash"), 3))},
	} {
		out, errs, code := runOwnerArgs(t, c.stdin, c.args...)
		if code != 0 || out != c.want {
			t.Errorf("owner %q: code %d, out %q (want %q), stderr %q", c.args, code, out, c.want, errs)
		}
	}
}

// TestOwnerNodes: with --cluster-size, each line names the node and the worker
// on it (docs/PROTOCOL.md section 5.2); one node keeps the worker of a
// single machine.
func TestOwnerNodes(t *testing.T) {
	place := func(key string, m, w int) string {
		n, wk := shard.Place([]byte(key), m, w)
		return fmt.Sprintf("%s\t%d\t%d\n", key, n, wk)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cluster-size", "1", "--workers", "8", "a", "user:42"}, "a\t0\t1\nuser:42\t0\t1\n"},
		// The table in docs/PROTOCOL.md 5.2.1: "a" is on node 0 of 3 and
		// node 4 of 5, "user:42" on node 1 of 3 and of 5; 5.1: worker 14
		// and 25 of 64.
		{[]string{"--cluster-size", "3", "--workers", "64", "a", "user:42"}, "a\t0\t14\nuser:42\t1\t25\n"},
		{[]string{"--cluster-size", "5", "--workers", "64", "a", "user:42"}, "a\t4\t14\nuser:42\t1\t25\n"},
		{[]string{"--cluster-size=16", "--workers=2", "room/lobby"}, place("room/lobby", 16, 2)},
	} {
		out, errs, code := runOwnerArgs(t, "", c.args...)
		if code != 0 || out != c.want {
			t.Errorf("owner %q: code %d, out %q (want %q), stderr %q", c.args, code, out, c.want, errs)
		}
	}
	if _, errs, code := runOwnerArgs(t, "", "--cluster-size", "0", "--workers", "2", "a"); code != 2 || !strings.Contains(errs, "--cluster-size must be") {
		t.Errorf("owner --cluster-size 0: code %d, stderr %q", code, errs)
	}
}

func TestOwnerErrors(t *testing.T) {
	for _, c := range []struct {
		stdin string
		args  []string
		code  int
		msg   string
	}{
		{"", []string{"--workers", "0", "a"}, 2, "--workers must be"},
		{"", []string{"--workers", "x", "a"}, 2, "--workers x: want a whole number"},
		{"", []string{"--workers", "2", "--hex", "zz"}, 1, "not hex"},
		{"", []string{"--workers", "2", ""}, 1, "empty key"},
		{"a\n\nb\n", []string{"--workers", "2"}, 1, "empty key"},
		{"", []string{"--nope"}, 2, "flag provided but not defined"},
	} {
		_, errs, code := runOwnerArgs(t, c.stdin, c.args...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("owner %q: code %d (want %d), stderr %q (want %q)", c.args, code, c.code, errs, c.msg)
		}
	}
	if out, errs, code := runOwnerArgs(t, "", "-h"); code != 0 || !strings.Contains(out, "usage: subordinate owner") || errs != "" {
		t.Errorf("owner -h: %d %q %q", code, out, errs)
	}
}

// TestOwnerBinary builds the command and runs it as an operator would.
func TestOwnerBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "subordinate")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "owner", "--workers", "64", "a", "user:42")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil || string(out) != "a\t14\nuser:42\t25\n" {
		t.Fatalf("subordinate owner: %v, %q", err, out)
	}
	cmd = exec.Command(bin, "owner", "--workers", "8")
	cmd.Stdin = strings.NewReader("a\n")
	if out, err := cmd.Output(); err != nil || string(out) != "a\t1\n" {
		t.Fatalf("subordinate owner from stdin: %v, %q", err, out)
	}
}

// TestOwnerKeyFrom: with --key-from, owner reads what the source reads
// (a host name, an address, a path or URL, a query, a header's value)
// and prints the key the server would take from it, and its shard.
func TestOwnerKeyFrom(t *testing.T) {
	line := func(in, key string, n int) string {
		return fmt.Sprintf("%s\t%s\t%d\n", in, key, shard.Owner([]byte(key), n))
	}
	for _, c := range []struct {
		src, in, key string
	}{
		{"sni", "Chat.Example.", "chat.example"},
		{"client-ip", "192.0.2.7", "192.0.2.7"},
		{"client-ip", "::ffff:192.0.2.7", "192.0.2.7"},
		{"client-ip/24", "192.0.2.7", "192.0.2.0/24"},
		{"http-path:2", "/rooms/lobby/ws", "lobby"},
		{"http-path:2", "https://chat.example/rooms/a%20b?x=1", "a b"},
		{"http-query:room", "https://chat.example/ws?x=1&room=kitchen", "kitchen"},
		{"http-query:room", "?room=a+b", "a b"},
		{"http-header:X-Room", "blue", "blue"},
		{"http-cookie:sid", "abc123", "abc123"},
	} {
		out, errs, code := runOwnerArgs(t, "", "--workers", "5", "--key-from", c.src, c.in)
		if want := line(c.in, c.key, 5); code != 0 || out != want {
			t.Errorf("owner --key-from %s %q: %q (%d, %s), want %q", c.src, c.in, out, code, errs, want)
		}
	}
	for _, c := range [][]string{
		{"--key-from", "client-ip", "not-an-ip"},
		{"--key-from", "http-path:3", "/only/two"},
		{"--key-from", "bogus", "x"},
	} {
		if out, _, code := runOwnerArgs(t, "", append([]string{"--workers", "2"}, c...)...); code == 0 {
			t.Errorf("owner %q: %q, exit 0; want an error", c, out)
		}
	}
}
