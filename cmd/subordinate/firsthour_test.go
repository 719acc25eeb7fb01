package main

// Real-process tests of what a new user tries in the first hour: listen
// addresses without a scheme, TLS flags without a TLS listener, a Unix
// socket with a mode.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/subordinate/subordinate/internal/proctest"
)

// TestListenShorthandAndTLSLog: --listen HOST:PORT (no scheme) serves TCP,
// and the master's start-up line shows each listener with its scheme,
// tls:// for the TLS one.
func TestListenShorthandAndTLSLog(t *testing.T) {
	t.Parallel()
	certFile, keyFile, _ := proctest.SelfSigned(t, "127.0.0.1")
	m := serve(t, 2, "--listen", "127.0.0.1:0", "--listen", "tls://127.0.0.1:0", "--cert", certFile, "--key", keyFile)
	started := m.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Msg() == "master started" })
	listen, _ := started["listen"].([]any)
	if len(listen) != 2 || !strings.HasPrefix(listen[0].(string), "tcp://127.0.0.1:") || !strings.HasPrefix(listen[1].(string), "tls://127.0.0.1:") {
		t.Fatalf("master started with listen %v, want [tcp://127.0.0.1:N tls://127.0.0.1:M]", started["listen"])
	}
	c := dial(t, "tcp", m.addr, "lobby")
	c.echo(t, "hello")
}

// TestTLSFlagsNeedTLSListener: --cert/--key (or --client-ca) with only
// plaintext listeners is refused before anything starts, instead of
// serving plaintext the operator believes encrypted.
func TestTLSFlagsNeedTLSListener(t *testing.T) {
	t.Parallel()
	certFile, keyFile, _ := proctest.SelfSigned(t, "127.0.0.1")
	for _, args := range [][]string{
		{"--cert", certFile, "--key", keyFile},
		{"--client-ca", certFile},
	} {
		p := proctest.Start(t, binary, nil, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
		st := p.WaitExit(soon)
		if st.ExitCode() != 2 || !strings.Contains(p.Stderr(), "no tls:// listener") {
			t.Errorf("%v: exit %d, want 2 with %q in:\n%s", args, st.ExitCode(), "no tls:// listener", p.Stderr())
		}
		if strings.Contains(p.Stderr(), "worker started") {
			t.Errorf("%v: a worker started", args)
		}
	}
}

// TestUnixListenerModeServe: a unix:// listener with ?mode= is created
// with that mode, before any client can connect, and serves.
func TestUnixListenerModeServe(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "sub") // short: a socket path has ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s.sock")
	m := serve(t, 2, "--listen", "unix://"+path+"?mode=0660&group="+strconv.Itoa(os.Getgid()))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 || st == nil || int(st.Gid) != os.Getgid() {
		t.Errorf("socket file %v (gid %v), want a socket with mode 0660, group %d", fi.Mode(), st, os.Getgid())
	}
	if m.addr != path {
		t.Errorf("serve found address %q, want %q", m.addr, path)
	}
	c := dial(t, "unix", path, "lobby")
	c.echo(t, "hello")
	m.Signal(syscall.SIGTERM)
	if st := m.WaitExit(soon); st.ExitCode() != 0 {
		t.Errorf("exit %v after SIGTERM", st)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after exit: %v", err)
	}
}
