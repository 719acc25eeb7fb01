package main

// Tests of the admin endpoint (serve --admin) with the real binary: the
// master's /metrics, /healthz, /readyz and /status while real traffic,
// drains and worker deaths happen, and the status command.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
	"github.com/subordinate/subordinate/server"
)

// adminAddr returns the address the master's admin endpoint bound, from
// its log.
func (s *master) adminAddr(t *testing.T) string {
	t.Helper()
	l := s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Msg() == "admin listening" })
	addr := l.Str("addr")
	if addr == "" {
		t.Fatalf("no address in %v", l)
	}
	return addr
}

// httpGet returns the status code and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: soon}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// scrape is one /metrics answer: the value of each series, keyed as
// series(name, labels...) writes it.
type scrape map[string]float64

func getMetrics(t *testing.T, admin string) scrape {
	t.Helper()
	code, body := httpGet(t, "http://"+admin+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	m := scrape{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

// series writes a series' key as the text format does: labels in order of
// their names, given as name, value pairs.
func series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	type kv struct{ k, v string }
	var kvs []kv
	for i := 0; i+1 < len(labels); i += 2 {
		kvs = append(kvs, kv{labels[i], labels[i+1]})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
	parts := make([]string, len(kvs))
	for i, p := range kvs {
		parts[i] = fmt.Sprintf("%s=%q", p.k, p.v)
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// shardVal returns a per-shard series' value; a missing series fails.
func (m scrape) shardVal(t *testing.T, name string, shard int, labels ...string) float64 {
	t.Helper()
	k := series(name, append([]string{"shard", strconv.Itoa(shard)}, labels...)...)
	v, ok := m[k]
	if !ok {
		t.Fatalf("no series %s", k)
	}
	return v
}

// waitIdle scrapes until no shard's handler serves a connection and no
// worker holds a client socket, and returns that scrape.
func waitIdle(t *testing.T, admin string, workers int) scrape {
	t.Helper()
	for deadline := time.Now().Add(soon); ; {
		m := getMetrics(t, admin)
		idle := true
		for i := 0; i < workers; i++ {
			idle = idle && m.shardVal(t, "subordinate_worker_up", i) == 1 &&
				m.shardVal(t, "subordinate_connections_active", i) == 0 &&
				m.shardVal(t, "subordinate_sockets_open", i) == 0
		}
		if idle {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections still open: %v", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAdminMetrics: the per-shard counts of /metrics after known traffic
// are exactly that traffic: refusals (each counted by the worker that
// accepted and refused it), connections accepted by each worker, opened by
// each owner (local, or handed off or relayed by another), forwarded by
// each acceptor, and the bytes each owner's handler read and wrote; plus
// the workers, mesh links and build. /status and the status command name
// every worker with its live pid.
func TestAdminMetrics(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode string) {
		const workers = 2
		s := serve(t, workers, "--forward", mode, "--admin", "127.0.0.1:0")
		admin := s.adminAddr(t)
		base := waitIdle(t, admin, workers)
		for i := 0; i < workers; i++ {
			if base.shardVal(t, "subordinate_worker_restarts_total", i) != 0 {
				t.Errorf("shard %d restarted", i)
			}
			peer := strconv.Itoa(1 - i)
			if base[series("subordinate_mesh_link_up", "shard", strconv.Itoa(i), "peer", peer)] != 1 {
				t.Errorf("shard %d: mesh link to %s not up", i, peer)
			}
		}
		if base["subordinate_workers"] != workers || base["subordinate_ready"] != 1 || base["subordinate_healthy"] != 1 {
			t.Errorf("workers %v ready %v healthy %v", base["subordinate_workers"], base["subordinate_ready"], base["subordinate_healthy"])
		}
		build := false
		for k, v := range base {
			build = build || strings.HasPrefix(k, "subordinate_build_info{") && strings.Contains(k, `goversion="go`) && v == 1
		}
		if !build {
			t.Error("no subordinate_build_info with a Go version")
		}

		// Refusals: each one is accepted and refused by the same worker.
		const refused = 5
		for n := 0; n < refused; n++ {
			c, err := net.DialTimeout("tcp", s.addr, soon)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(soon))
			io.WriteString(c, "!bad\n")
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if !strings.HasPrefix(line, "-ERR keys may not start") {
				t.Fatalf("reply to a bad preamble: %q", line)
			}
		}
		after := waitIdle(t, admin, workers)
		total := 0.0
		for i := 0; i < workers; i++ {
			r := after.shardVal(t, "subordinate_refused_total", i, "reason", "bad_preamble") - base.shardVal(t, "subordinate_refused_total", i, "reason", "bad_preamble")
			a := after.shardVal(t, "subordinate_connections_accepted_total", i) - base.shardVal(t, "subordinate_connections_accepted_total", i)
			if r != a {
				t.Errorf("shard %d: %v refused, %v accepted", i, r, a)
			}
			total += r
		}
		if total != refused {
			t.Errorf("%v bad preambles counted, want %d", total, refused)
		}

		// Connections served: whoami names the owner and the acceptor.
		base = after
		var accepted, bytesIn, bytesOut [workers]float64
		var opened, forwarded [workers]map[string]float64
		for i := range opened {
			opened[i], forwarded[i] = map[string]float64{}, map[string]float64{}
		}
		local, fwd := 0, 0
		for n := 0; local < 3 || fwd < 3; n++ {
			if n > 500 {
				t.Fatalf("after %d connections, %d local and %d forwarded", n, local, fwd)
			}
			c, err := net.DialTimeout("tcp", s.addr, soon)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(soon))
			fmt.Fprintf(c, "k%d\nping\n", n)
			r := bufio.NewReader(c)
			line, err := r.ReadString('\n')
			echo, err2 := r.ReadString('\n')
			c.Close()
			if err != nil || err2 != nil || echo != "ping\n" {
				t.Fatalf("reply %q %q: %v %v", line, echo, err, err2)
			}
			owner, _ := strconv.Atoi(shardRE.FindStringSubmatch(line)[1])
			via, _ := strconv.Atoi(viaRE.FindStringSubmatch(line)[1])
			accepted[via]++
			bytesIn[owner] += float64(len("ping\n"))
			bytesOut[owner] += float64(len(line) + len(echo))
			if via == owner {
				local++
				opened[owner]["local"]++
			} else {
				fwd++
				opened[owner][mode]++
				forwarded[via][mode]++
			}
		}
		after = waitIdle(t, admin, workers)
		delta := func(name string, shard int, labels ...string) float64 {
			return after.shardVal(t, name, shard, labels...) - base.shardVal(t, name, shard, labels...)
		}
		for i := 0; i < workers; i++ {
			check := func(what string, got, want float64) {
				t.Helper()
				if got != want {
					t.Errorf("shard %d: %s grew by %v, want %v", i, what, got, want)
				}
			}
			check("accepted", delta("subordinate_connections_accepted_total", i), accepted[i])
			check("bytes received", delta("subordinate_bytes_received_total", i), bytesIn[i])
			check("bytes sent", delta("subordinate_bytes_sent_total", i), bytesOut[i])
			for _, how := range []string{"local", "handoff", "relay"} {
				check("opened "+how, delta("subordinate_connections_opened_total", i, "how", how), opened[i][how])
			}
			for _, how := range []string{"handoff", "relay"} {
				check("forwarded "+how, delta("subordinate_connections_forwarded_total", i, "how", how), forwarded[i][how])
			}
			check("refused", delta("subordinate_refused_total", i, "reason", "bad_preamble"), 0)
		}

		// A connection held open is active on its owner and in /status.
		held := dial(t, "tcp", s.addr, "held")
		m := getMetrics(t, admin)
		if v := m.shardVal(t, "subordinate_connections_active", held.shard); v != 1 {
			t.Errorf("active on shard %d: %v, want 1", held.shard, v)
		}
		code, body := httpGet(t, "http://"+admin+"/status")
		var st server.Status
		if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
			t.Fatalf("/status: %d %v\n%s", code, err, body)
		}
		pids := s.WorkerPids()
		if st.Pid != s.Pid || st.State != "running" || !st.Ready || !st.Healthy || len(st.Workers) != workers || len(st.Listen) != 1 {
			t.Fatalf("/status: %s", body)
		}
		for i, w := range st.Workers {
			if w.Shard != i || w.Pid != pids[i] || !proctest.Alive(w.Pid) || w.State != "running" || !w.Answered || w.Connections == nil {
				t.Errorf("/status worker %d: %+v (pids %v)", i, w, pids)
				continue
			}
			want := 0
			if i == held.shard {
				want = 1
			}
			if *w.Connections != want {
				t.Errorf("/status worker %d: %d connections, want %d", i, *w.Connections, want)
			}
		}
		held.Close()

		// The status command prints the same as a table.
		var out, errb bytes.Buffer
		if rc := run([]string{"status", "--admin", admin}, &out, &errb); rc != 0 {
			t.Fatalf("status: exit %d\n%s%s", rc, out.String(), errb.String())
		}
		text := out.String()
		if !strings.Contains(text, fmt.Sprintf("master   pid %d, running", s.Pid)) || !strings.Contains(text, "SHARD") {
			t.Errorf("status output:\n%s", text)
		}
		for i, pid := range pids {
			if !regexpLine(text, fmt.Sprintf(`^%d +%d +running +0 +\d+ `, i, pid)) {
				t.Errorf("no row for shard %d pid %d in:\n%s", i, pid, text)
			}
		}
		if code, _ := httpGet(t, "http://"+admin+"/debug/pprof/"); code != 404 {
			t.Errorf("/debug/pprof/ without --admin-pprof: %d", code)
		}
		s.stop(t)
	})
}

// TestAdminReadyzDrain: /readyz answers 200 while the server accepts and
// 503 as soon as the master drains, while a connection in flight keeps
// the drain going; the endpoint goes away with the master.
func TestAdminReadyzDrain(t *testing.T) {
	t.Parallel()
	s := serve(t, 2, "--admin", "127.0.0.1:0", "--drain-timeout", "10m")
	admin := s.adminAddr(t)
	if code, body := httpGet(t, "http://"+admin+"/readyz"); code != 200 {
		t.Fatalf("/readyz before the drain: %d %q", code, body)
	}
	held := s.onEveryShard(t)
	s.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(soon); ; time.Sleep(10 * time.Millisecond) {
		code, body := httpGet(t, "http://"+admin+"/readyz")
		if code == 503 {
			if !strings.Contains(body, "draining") {
				t.Errorf("/readyz while draining: %q", body)
			}
			break
		}
		if code != 200 || time.Now().After(deadline) {
			t.Fatalf("/readyz after SIGTERM: %d %q", code, body)
		}
	}
	if s.Exited() {
		t.Fatal("the master exited with connections in flight")
	}
	code, body := httpGet(t, "http://"+admin+"/status")
	var st server.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.State != "draining" || st.Ready {
		t.Errorf("/status while draining: %d %v %s", code, err, body)
	}
	for _, c := range held {
		c.echo(t, "in flight")
		c.Close()
	}
	if st := s.WaitExit(soon); st.ExitCode() != 0 {
		t.Fatalf("exit after drain: %v", st)
	}
	if c, err := net.DialTimeout("tcp", admin, soon); err == nil {
		c.Close()
		t.Error("the admin endpoint outlived the master")
	}
}

// TestAdminHealthzWorkerKilled: /healthz answers 503 once a worker is
// killed, until the master has restarted it, then 200 again; the restart
// shows in /metrics and /status. With --admin-pprof the master's profiles
// are served.
func TestAdminHealthzWorkerKilled(t *testing.T) {
	t.Parallel()
	s := serve(t, 2, "--admin", "127.0.0.1:0", "--admin-pprof")
	admin := s.adminAddr(t)
	if code, body := httpGet(t, "http://"+admin+"/healthz"); code != 200 {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	if code, body := httpGet(t, "http://"+admin+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ with --admin-pprof: %d", code)
	}

	// Poll /healthz from before the kill until the shard is back: the
	// window between the two (the restart back-off, then the new
	// worker's start) is what it must see.
	var (
		mu        sync.Mutex
		unhealthy []string
		polls     int
	)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		c := &http.Client{Timeout: soon}
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := c.Get("http://" + admin + "/healthz")
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			polls++
			if resp.StatusCode == 503 {
				unhealthy = append(unhealthy, strings.TrimSpace(string(b)))
			}
			mu.Unlock()
		}
	}()
	old := workerPid(t, s.Proc, 1, 1)
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("worker died", "shard", 1) })
	s.WaitLog(soon, 2, func(l proctest.Line) bool { return l.Is("worker ready", "shard", 1) })
	for deadline := time.Now().Add(soon); ; time.Sleep(10 * time.Millisecond) {
		if code, _ := httpGet(t, "http://"+admin+"/healthz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/healthz still unhealthy after the restart")
		}
	}
	close(stop)
	<-done
	mu.Lock()
	t.Logf("/healthz: %d polls, %d answered 503", polls, len(unhealthy))
	if len(unhealthy) == 0 {
		t.Errorf("/healthz never answered 503 while shard 1 was down (%d polls)", polls)
	} else if !strings.Contains(unhealthy[0], "shard 1") {
		t.Errorf("/healthz while shard 1 was down: %q", unhealthy[0])
	}
	mu.Unlock()

	m := getMetrics(t, admin)
	if m.shardVal(t, "subordinate_worker_restarts_total", 1) != 1 || m.shardVal(t, "subordinate_worker_restarts_total", 0) != 0 {
		t.Errorf("restarts: %v", m)
	}
	if m.shardVal(t, "subordinate_worker_up", 1) != 1 {
		t.Error("the restarted worker is not up")
	}
	code, body := httpGet(t, "http://"+admin+"/status")
	var st server.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st.Workers) != 2 {
		t.Fatalf("/status: %d %v %s", code, err, body)
	}
	if w := st.Workers[1]; w.Pid == old || w.Pid != workerPid(t, s.Proc, 1, 2) || !proctest.Alive(w.Pid) || w.Restarts != 1 {
		t.Errorf("/status worker 1 after the restart: %+v (old pid %d)", w, old)
	}
	s.stop(t)
}

// TestStatusCommandErrors: the status command needs --admin, and says so
// when nothing answers there.
func TestStatusCommandErrors(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if rc := run([]string{"status"}, &out, &errb); rc != 2 || !strings.Contains(errb.String(), "--admin") {
		t.Errorf("status without --admin: exit %d\n%s", rc, errb.String())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	errb.Reset()
	if rc := run([]string{"status", "--admin", addr}, &out, &errb); rc != 1 || !strings.Contains(errb.String(), "subordinate status:") {
		t.Errorf("status of nothing: exit %d\n%s", rc, errb.String())
	}
}

// regexpLine reports whether a line of text matches the regular
// expression re.
func regexpLine(text, re string) bool {
	return regexp.MustCompile("(?m)" + re).MatchString(text)
}
