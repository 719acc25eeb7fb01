package main

// SIGHUP (certificate reload) and --pidfile with the real binary.

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
)

// TestPidFileFlag: the master writes its pid to --pidfile once it has
// bound its listeners and removes the file when it exits.
func TestPidFileFlag(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "sub.pid")
	s := serve(t, 2, "--pidfile", pidFile)
	if got := readPid(t, pidFile); got != s.Pid {
		t.Fatalf("the pid file names %d, want the master %d", got, s.Pid)
	}
	s.Signal(syscall.SIGTERM)
	if st := s.WaitExit(soon); st.ExitCode() != 0 {
		t.Fatalf("exit after SIGTERM: %v", st)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatalf("the pid file is still there after the master exited: %v", err)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %q: %v", b, err)
	}
	return pid
}

// servedBy dials the TLS listener until every worker has accepted (and
// so terminated the TLS of) at least one connection, and returns the
// common name of the certificate each handshake got; it fails the test if
// one handshake got another than want. whoami names the accepting worker
// (via=).
func servedBy(t *testing.T, s *master, p *pki, want string) {
	t.Helper()
	seen := map[int]bool{}
	for n := 0; len(seen) < s.workers; n++ {
		if n > 1000 {
			t.Fatalf("after %d connections, only workers %v accepted one", n, seen)
		}
		c, _, line := tlsDial(t, s.addr, &tls.Config{RootCAs: p.pool, ServerName: "a.example"}, fmt.Sprintf("reload-%d", n))
		got := c.ConnectionState().PeerCertificates[0].Subject.CommonName
		c.Close()
		var via int
		if i := strings.Index(line, "via="); i < 0 {
			t.Fatalf("whoami %q names no accepting worker", line)
		} else {
			fmt.Sscanf(line[i:], "via=%d", &via)
		}
		if got != want {
			t.Fatalf("a handshake on worker %d got the certificate of %s, want %s", via, got, want)
		}
		seen[via] = true
	}
}

// TestReloadCertificates: SIGHUP makes every worker re-read --cert and
// --key: new handshakes on each worker get the new certificate, while a
// connection made before keeps working. A broken file is then refused
// by every worker (logged with the worker and the file), which keeps
// serving the certificate it had; no worker dies.
func TestReloadCertificates(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	oldCert, oldKey, _ := p.issue(t, "old", false, "a.example")
	newCert, newKey, _ := p.issue(t, "new", false, "a.example")
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	install := func(fromCert, fromKey string) {
		copyOver(t, fromCert, cert)
		copyOver(t, fromKey, key)
	}
	install(oldCert, oldKey)
	s := serve(t, 3, "--listen", "tls://127.0.0.1:0", "--cert", cert, "--key", key)
	servedBy(t, s, p, "old")
	held, r, _ := tlsDial(t, s.addr, &tls.Config{RootCAs: p.pool, ServerName: "a.example"}, "held")

	install(newCert, newKey)
	s.Signal(syscall.SIGHUP)
	for i := 0; i < s.workers; i++ {
		s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("TLS certificates reloaded", "shard", i) })
	}
	servedBy(t, s, p, "new")

	fmt.Fprintf(held, "from before the reload\n")
	if line, err := r.ReadString('\n'); err != nil || line != "from before the reload\n" {
		t.Fatalf("the connection made before the reload: %q, %v", line, err)
	}
	if got := held.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "old" {
		t.Fatalf("the held connection's certificate is %s", got)
	}

	// A broken certificate file: refused everywhere, "new" stays.
	if err := os.WriteFile(cert, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Signal(syscall.SIGHUP)
	for i := 0; i < s.workers; i++ {
		l := s.WaitLog(soon, 1, func(l proctest.Line) bool {
			return l.Is("TLS reload failed; new handshakes keep the certificates in use", "shard", i)
		})
		if l.Str("file") != cert || l.Int("failures") != 1 || l.Str("level") != "ERROR" {
			t.Fatalf("worker %d's refusal: %v; want file %s, failures 1, at ERROR", i, l, cert)
		}
	}
	servedBy(t, s, p, "new")
	fmt.Fprintf(held, "after a failed reload\n")
	if line, err := r.ReadString('\n'); err != nil || line != "after a failed reload\n" {
		t.Fatalf("the held connection after a failed reload: %q, %v", line, err)
	}
	held.Close()
	for _, l := range s.Logs() {
		if m := l.Msg(); m == "worker died" || m == "worker exited" || m == "worker exited on its own" {
			t.Fatalf("a worker went during the reloads: %v", l)
		}
	}
	s.Signal(syscall.SIGTERM)
	if st := s.WaitExit(soon); st.ExitCode() != 0 {
		t.Fatalf("exit after SIGTERM: %v", st)
	}
}

// copyOver writes the content of from over the file to, in place (as
// cp does).
func copyOver(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestEarlySignals: a SIGHUP sent the moment the master's pid file
// appears (a script that waits for the file, then signals) does not kill
// it with the default action, even though its workers are not started
// yet: the master catches its signals before it writes the file. Then it
// serves, and drains on SIGTERM.
func TestEarlySignals(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "sub.pid")
	p := proctest.Start(t, binary, nil, "serve", "--log-format", "json", "--workers", "1",
		"--listen", "tcp://127.0.0.1:0", "--handler", "whoami", "--pidfile", pidFile, "--admin", "127.0.0.1:0")
	for i := 0; ; i++ {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if i == 200000 || p.Exited() {
			t.Fatalf("no pid file\n%s", p.Stderr())
		}
		time.Sleep(50 * time.Microsecond)
	}
	p.Signal(syscall.SIGHUP)
	started := p.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Msg() == "master started" })
	p.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("worker ready", "shard", 0) })
	listen, _ := started["listen"].([]any)
	if len(listen) == 0 {
		t.Fatalf("no listen address in %v", started)
	}
	_, addr, _ := strings.Cut(listen[0].(string), "://")
	c := dial(t, "tcp", addr, "early")
	c.echo(t, "served")
	c.Close()
	p.Signal(syscall.SIGTERM)
	if st := p.WaitExit(soon); st.ExitCode() != 0 {
		t.Fatalf("the master exited %v after SIGTERM, want 0\n%s", st, p.Stderr())
	}
}
