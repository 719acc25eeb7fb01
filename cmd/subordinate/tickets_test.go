package main

// TLS session resumption across workers with the real binary: the master
// gives every worker the same session ticket keys, so a session made
// through one worker resumes through any other, a restarted one and one
// of a new binary (SIGUSR2) included; rotation keeps the previous keys.

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/subordinate/subordinate/internal/proctest"
)

// tlsVersions are the versions resumption is tested with: TLS 1.3
// (tickets sent after the handshake, PSK resumption) and TLS 1.2 (the
// ticket in the handshake).
var tlsVersions = []uint16{tls.VersionTLS13, tls.VersionTLS12}

// resumeClient is a client with a session cache of its own.
type resumeClient struct {
	p     *pki
	v     uint16
	cache tls.ClientSessionCache
}

func newResumeClient(p *pki, v uint16) *resumeClient {
	return &resumeClient{p: p, v: v, cache: tls.NewLRUClientSessionCache(4)}
}

// dial makes one connection (the key line, the whoami reply: a TLS 1.3
// ticket arrives before it) and returns the accepting shard, the owner's
// pid and whether the session was resumed.
func (rc *resumeClient) dial(t *testing.T, addr, key string) (via, pid int, resumed bool) {
	t.Helper()
	c, _, line := tlsDial(t, addr, &tls.Config{RootCAs: rc.p.pool, ServerName: "a.example",
		MinVersion: rc.v, MaxVersion: rc.v, ClientSessionCache: rc.cache}, key)
	defer c.Close()
	if got := c.ConnectionState().Version; got != rc.v {
		t.Fatalf("negotiated %s, want %s", tls.VersionName(got), tls.VersionName(rc.v))
	}
	m, pm := viaRE.FindStringSubmatch(line), pidRE.FindStringSubmatch(line)
	if m == nil || pm == nil {
		t.Fatalf("whoami %q names no accepting worker or pid", line)
	}
	via, _ = strconv.Atoi(m[1])
	pid, _ = strconv.Atoi(pm[1])
	return via, pid, c.ConnectionState().DidResume
}

// resumeOn reconnects until a connection is accepted by a worker that
// accept says yes to, and returns whether that one resumed; every
// connection before it must have resumed too (they all present a ticket
// the server can read). It fails the test after many connections.
func (rc *resumeClient) resumeOn(t *testing.T, addr string, accept func(via, pid int) bool) bool {
	t.Helper()
	for n := 0; n < 500; n++ {
		via, pid, resumed := rc.dial(t, addr, fmt.Sprintf("resume-%d", n))
		if accept(via, pid) {
			return resumed
		}
		if !resumed {
			t.Fatalf("connection %d (accepted by shard %d) made a full handshake", n, via)
		}
	}
	t.Fatalf("500 connections and none was accepted by the worker wanted")
	return false
}

// TestTLSResumeAcrossWorkers: a full handshake through one worker, then a
// resumed one through another, for TLS 1.3 and 1.2; then one worker is
// killed and its restart (which got the keys in its init message)
// resumes a session made before it existed.
func TestTLSResumeAcrossWorkers(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	s := tlsServe(t, p)
	for _, v := range tlsVersions {
		rc := newResumeClient(p, v)
		first, _, resumed := rc.dial(t, s.addr, "first")
		if resumed {
			t.Fatalf("%s: the first connection resumed a session", tls.VersionName(v))
		}
		if !rc.resumeOn(t, s.addr, func(via, _ int) bool { return via != first }) {
			t.Fatalf("%s: a session made through worker %d did not resume through another", tls.VersionName(v), first)
		}
	}

	// A session made before a worker restart resumes through the fresh
	// worker.
	caches := map[uint16]*resumeClient{}
	for _, v := range tlsVersions {
		caches[v] = newResumeClient(p, v)
		caches[v].dial(t, s.addr, "before")
	}
	victim := workerPid(t, s.Proc, 1, 1)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	fresh := workerPid(t, s.Proc, 1, 2)
	s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("worker ready", "shard", 1, "worker_pid", fresh) })
	for _, v := range tlsVersions {
		if !caches[v].resumeOn(t, s.addr, func(via, _ int) bool { return via == 1 }) {
			t.Fatalf("%s: the restarted worker did not resume a session made before it started", tls.VersionName(v))
		}
	}
	s.stop(t)
}

// TestTLSTicketRotation: with keys rotated every 300ms, a session
// resumes after a rotation (the previous key still decrypts); once every
// worker has keys from three or more rotations later, it no longer does
// (a full handshake, not an error). Counts of outcomes, not timings: the
// rotations are seen in the logs (debug level: a worker's "TLS session
// ticket keys installed").
func TestTLSTicketRotation(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	const workers = 2
	s := serveTLS(t, p, workers, "--tls-ticket-rotation", "300ms", "--log-level", "debug")
	rotated := func() int { // the newest rotation the master logged
		n := 0
		for _, l := range s.Logs() {
			if l.Is("TLS session ticket keys rotated") {
				n = max(n, l.Int("rotation"))
			}
		}
		return n
	}
	waitRotation := func(r int) {
		s.WaitLog(soon, 1, func(l proctest.Line) bool {
			return l.Is("TLS session ticket keys rotated") && l.Int("rotation") >= r
		})
	}
	for _, v := range tlsVersions {
		const trials = 4
		resumed := 0
		for i := 0; i < trials; i++ {
			rc := newResumeClient(p, v)
			rc.dial(t, s.addr, "fresh")
			waitRotation(rotated() + 1)
			if _, _, ok := rc.dial(t, s.addr, "after one rotation"); ok {
				resumed++
			}
		}
		t.Logf("%s: %d of %d sessions resumed after a rotation", tls.VersionName(v), resumed, trials)
		if resumed < trials/2 {
			t.Fatalf("%s: %d of %d sessions resumed after one rotation: the previous key is not kept", tls.VersionName(v), resumed, trials)
		}

		// A ticket outlives its key by two rotations at most. Wait
		// until every worker holds keys at least five rotations newer
		// than any the master had logged after the ticket was made (two
		// of margin for a log line read late).
		stale := newResumeClient(p, v)
		stale.dial(t, s.addr, "stale")
		target := rotated() + 5
		for i := 0; i < workers; i++ {
			s.WaitLog(soon, 1, func(l proctest.Line) bool {
				return l.Is("TLS session ticket keys installed", "shard", i) && l.Int("rotation") >= target
			})
		}
		if _, _, ok := stale.dial(t, s.addr, "stale"); ok {
			t.Fatalf("%s: a session resumed with a ticket whose key was dropped", tls.VersionName(v))
		}
	}
	// The keys never reach a log line.
	for _, l := range s.Logs() {
		for k := range l {
			if k == "keys" {
				if _, isCount := l[k].(float64); !isCount {
					t.Fatalf("a log line has keys that are not a count: %v", l)
				}
			}
		}
	}
	s.stop(t)
}

// serveTLS starts a server with a tls:// listener, the a.example and
// b.example certificates and the given number of workers.
func serveTLS(t *testing.T, p *pki, workers int, extra ...string) *master {
	t.Helper()
	aCert, aKey, _ := p.issue(t, "a.example", false, "a.example")
	bCert, bKey, _ := p.issue(t, "b.example", false, "b.example")
	args := append([]string{"--listen", "tls://127.0.0.1:0",
		"--cert", aCert, "--key", aKey, "--cert", bCert, "--key", bKey}, extra...)
	return serve(t, workers, args...)
}

// TestTLSResumeAcrossUpgrade: the old master hands its ticket keys to the
// new one (SIGUSR2), so sessions made through the old workers resume
// through the new ones.
func TestTLSResumeAcrossUpgrade(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "subordinate")
	copyBinary(t, bin)
	aCert, aKey, _ := p.issue(t, "a.example", false, "a.example")
	s := serveBinary(t, bin, 2, "--listen", "tls://127.0.0.1:0", "--cert", aCert, "--key", aKey,
		"--preamble-timeout", "1s")
	oldMaster := s.Pid
	clients := map[uint16]*resumeClient{}
	for _, v := range tlsVersions {
		clients[v] = newResumeClient(p, v)
		if _, _, resumed := clients[v].dial(t, s.addr, "old"); resumed {
			t.Fatal("the first connection resumed")
		}
	}
	s.Signal(syscall.SIGUSR2)
	ready := s.WaitLog(soon, 1, func(l proctest.Line) bool {
		return l.Is("upgrade: the new master is ready; this master drains its workers and exits", "pid", oldMaster)
	})
	newMaster := ready.Int("new_master_pid")
	t.Cleanup(func() {
		if proctest.Alive(newMaster) {
			syscall.Kill(newMaster, syscall.SIGKILL)
		}
	})
	newWorkers := workersOf(s.Proc, newMaster)
	for _, v := range tlsVersions {
		// A connection owned by a new worker was accepted by a new
		// worker: the old ones forward only to their own generation.
		if !clients[v].resumeOn(t, s.addr, func(_, pid int) bool { return containsInt(newWorkers, pid) }) {
			t.Fatalf("%s: a session of the old generation did not resume through the new one", tls.VersionName(v))
		}
	}
	took := false
	for _, l := range s.Logs() {
		took = took || l.Is("upgrade: took over the old master's TLS session ticket keys", "pid", newMaster, "keys", 1)
	}
	if !took {
		t.Error("the new master did not log that it took over the old master's keys")
	}
	waitGone(t, oldMaster, "the old master")
	if err := syscall.Kill(newMaster, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s.WaitExit(soon)
	waitGone(t, newMaster, "the new master")
}
