package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/subordinate/subordinate/internal/cluster"
	"github.com/subordinate/subordinate/internal/ctl"
)

// snapshotCollector renders a fixed view and figures, as a scrape would.
type snapshotCollector struct {
	view  adminView
	stats map[int]*workerStats
}

func (snapshotCollector) Describe(chan<- *prometheus.Desc) {}
func (c snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	collectCluster(ch, c.view, c.stats, BuildInfo{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26"})
}

// testView is three shards: 0 answered, 1 answered but its loop did not,
// 2 is restarting (no answer).
func testView() (adminView, map[int]*workerStats) {
	view := adminView{State: "running", Ready: true, Workers: []workerView{
		{Shard: 0, Pid: 100, State: "running", Asked: true},
		{Shard: 1, Pid: 101, State: "running", Restarts: 1, Asked: true},
		{Shard: 2, State: "restarting", Restarts: 3},
	}}
	stats := map[int]*workerStats{
		0: {Shard: 0, Pid: 100, Loop: true, Accepted: 7, Active: 2, Sockets: 3, MaxConns: 50,
			Opened:    map[string]uint64{"local": 3, "handoff": 2, "relay": 1},
			Forwarded: map[string]uint64{"handoff": 4, "relay": 1},
			Refused:   map[string]uint64{"busy": 5, "bad_preamble": 0},
			TLS:       map[string]uint64{"ok": 9},
			BytesIn:   10, BytesOut: 20, Goroutines: 12, HeapBytes: 4096,
			Mesh: []meshPeerStats{{Peer: 1, Up: true, Links: 2, Downs: 1, Streams: 1, Opened: 6, Accepted: 5}, {Peer: 2}}},
		1: {Shard: 1, Pid: 101, Loop: false, Sockets: 1, Refused: map[string]uint64{"busy": 1}, TLS: map[string]uint64{"ok": 0}},
	}
	return view, stats
}

// TestCollectCluster: the figures of the workers that answered become
// series labelled by shard (and peer, how, reason, result); a worker
// whose loop did not answer reports only what it kept off the loop; one
// that did not answer is down, with only its restarts.
func TestCollectCluster(t *testing.T) {
	view, stats := testView()
	c := snapshotCollector{view, stats}
	want := `
# HELP subordinate_build_info The binary's build: module version, VCS revision, Go version. Always 1.
# TYPE subordinate_build_info gauge
subordinate_build_info{goversion="go1.26",revision="abc",version="v1.2.3"} 1
# HELP subordinate_connections_accepted_total Connections accepted on the listeners by the shard's worker (refused ones included).
# TYPE subordinate_connections_accepted_total counter
subordinate_connections_accepted_total{shard="0"} 7
# HELP subordinate_connections_active Connections the shard's handler serves now (opened and not yet closed).
# TYPE subordinate_connections_active gauge
subordinate_connections_active{shard="0"} 2
# HELP subordinate_connections_forwarded_total Connections the shard's worker accepted and sent to the shard that owns their key, by how: handoff (the socket) or relay (the bytes, over the mesh).
# TYPE subordinate_connections_forwarded_total counter
subordinate_connections_forwarded_total{how="handoff",shard="0"} 4
subordinate_connections_forwarded_total{how="relay",shard="0"} 1
# HELP subordinate_refused_total Connections refused by the shard's worker, by reason.
# TYPE subordinate_refused_total counter
subordinate_refused_total{reason="bad_preamble",shard="0"} 0
subordinate_refused_total{reason="busy",shard="0"} 5
subordinate_refused_total{reason="busy",shard="1"} 1
# HELP subordinate_worker_up 1 if the shard's worker is alive, ready and answered this scrape in time; 0 otherwise.
# TYPE subordinate_worker_up gauge
subordinate_worker_up{shard="0"} 1
subordinate_worker_up{shard="1"} 1
subordinate_worker_up{shard="2"} 0
# HELP subordinate_worker_restarts_total Workers the master started for the shard after its first.
# TYPE subordinate_worker_restarts_total counter
subordinate_worker_restarts_total{shard="0"} 0
subordinate_worker_restarts_total{shard="1"} 1
subordinate_worker_restarts_total{shard="2"} 3
# HELP subordinate_mesh_link_up 1 if the shard's mesh session to peer is up.
# TYPE subordinate_mesh_link_up gauge
subordinate_mesh_link_up{peer="1",shard="0"} 1
subordinate_mesh_link_up{peer="2",shard="0"} 0
# HELP subordinate_mesh_link_downs_total Mesh sessions to peer that died.
# TYPE subordinate_mesh_link_downs_total counter
subordinate_mesh_link_downs_total{peer="1",shard="0"} 1
subordinate_mesh_link_downs_total{peer="2",shard="0"} 0
# HELP subordinate_ready 1 while the master accepts connections (what /readyz answers 200 to).
# TYPE subordinate_ready gauge
subordinate_ready 1
# HELP subordinate_healthy 1 while every worker runs (what /healthz answers 200 to).
# TYPE subordinate_healthy gauge
subordinate_healthy 0
# HELP subordinate_workers Shards (worker processes) the master runs.
# TYPE subordinate_workers gauge
subordinate_workers 3
# HELP subordinate_worker_heap_bytes Bytes of heap objects of the shard's worker process (live and not yet swept).
# TYPE subordinate_worker_heap_bytes gauge
subordinate_worker_heap_bytes{shard="0"} 4096
subordinate_worker_heap_bytes{shard="1"} 0
`
	names := []string{
		"subordinate_build_info", "subordinate_connections_accepted_total", "subordinate_connections_active",
		"subordinate_connections_forwarded_total", "subordinate_refused_total", "subordinate_worker_up",
		"subordinate_worker_restarts_total", "subordinate_mesh_link_up", "subordinate_mesh_link_downs_total",
		"subordinate_ready", "subordinate_healthy", "subordinate_workers", "subordinate_worker_heap_bytes",
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// Every series passes the registry's checks (names, label
	// consistency, no duplicates).
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "subordinate_bytes_received_total"); n != 1 {
		t.Errorf("bytes received: %d series, want 1 (shard 0: the others' loops did not answer)", n)
	}
}

// TestStatusOf: /status names every worker, with its connections when it
// answered with its loop's figures.
func TestStatusOf(t *testing.T) {
	view, stats := testView()
	stats[1].Pid = 999 // an answer of another process: not this worker's
	now := time.Now()
	a := &adminServer{start: now.Add(-time.Minute), listen: []string{"tcp://127.0.0.1:7000"}, build: BuildInfo{Version: "v1"}}
	view.Workers[0].Started = now.Add(-time.Second)
	st := a.statusOf(view, stats, now)
	if st.Version != "v1" || st.Uptime != 60 || st.State != "running" || len(st.Listen) != 1 || len(st.Workers) != 3 {
		t.Fatalf("status: %+v", st)
	}
	w0, w1, w2 := st.Workers[0], st.Workers[1], st.Workers[2]
	if w0.Pid != 100 || !w0.Answered || w0.Connections == nil || *w0.Connections != 2 || w0.Uptime != 1 {
		t.Errorf("worker 0: %+v", w0)
	}
	if w1.Answered || w1.Connections != nil || w1.Restarts != 1 {
		t.Errorf("worker 1: %+v", w1)
	}
	if w2.Pid != 0 || w2.State != "restarting" || w2.Answered || w2.Uptime != 0 {
		t.Errorf("worker 2: %+v", w2)
	}
}

// TestAdminEndpoint serves the endpoint over HTTP with a stand-in for the
// supervisor: the answers of the workers that reply are merged, a worker
// that never replies is down once the wait is over, and /healthz,
// /readyz and /status follow the view.
func TestAdminEndpoint(t *testing.T) {
	before := goroutines()
	cfg := DefaultConfig()
	cfg.Admin = "127.0.0.1:0"
	a, err := listenAdmin(&cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), []string{"tcp://127.0.0.1:7000"}, cluster.Members{})
	if err != nil {
		t.Fatal(err)
	}
	go a.serve()
	defer a.close()
	base := "http://" + a.ln.Addr().String()

	view := adminView{State: "running", Ready: true, Healthy: true, Workers: []workerView{
		{Shard: 0, Pid: 100, State: "running", Up: true}, {Shard: 1, Pid: 101, State: "running", Up: true},
	}}
	stop := make(chan struct{})
	var stopOnce sync.Once
	defer stopOnce.Do(func() { close(stop) })
	setView := make(chan adminView)
	go func() { // the supervisor: shard 0 answers, shard 1 never does
		for {
			select {
			case v := <-setView:
				view = v
			case req := <-a.requests():
				v := view
				v.Workers = append([]workerView(nil), view.Workers...)
				if req.id > 0 {
					for i := range v.Workers {
						v.Workers[i].Asked = true
					}
					snap, _ := json.Marshal(workerStats{Pid: 100, Loop: true, Active: 4, Accepted: 9})
					go a.deliver(0, &ctl.Stats{ID: req.id, Snapshot: snap})
					go a.deliver(0, &ctl.Stats{ID: req.id + 1000, Snapshot: snap}) // nobody waits for it
				}
				req.reply <- v
			case <-stop:
				return
			}
		}
	}()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := get("/metrics")
	for _, s := range []string{`subordinate_worker_up{shard="0"} 1`, `subordinate_worker_up{shard="1"} 0`,
		`subordinate_connections_accepted_total{shard="0"} 9`, "go_goroutines", `subordinate_build_info{`} {
		if code != 200 || !strings.Contains(body, s) {
			t.Errorf("/metrics: %d, no %q in\n%s", code, s, body)
		}
	}
	if strings.Contains(body, `subordinate_connections_accepted_total{shard="1"}`) {
		t.Errorf("/metrics reports figures of a worker that did not answer")
	}
	if code, body := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d %q", code, body)
	}
	code, body = get("/status")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st.Workers) != 2 ||
		!st.Workers[0].Answered || st.Workers[1].Answered || *st.Workers[0].Connections != 4 {
		t.Errorf("/status: %d %v %s", code, err, body)
	}
	if code, _ := get("/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ without AdminPprof: %d", code)
	}

	// A worker restarting, then a drain.
	v := view
	v.Healthy, v.Workers = false, []workerView{{Shard: 0, Pid: 100, State: "running", Up: true}, {Shard: 1, State: "restarting"}}
	setView <- v
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "shard 1 restarting") {
		t.Errorf("/healthz with a worker down: %d %q", code, body)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz with a worker restarting: %d", code)
	}
	v.State, v.Ready = "draining", false
	setView <- v
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("/readyz while draining: %d %q", code, body)
	}

	// Once the supervisor is gone, every answer is 503 at once.
	a.stopped()
	for _, p := range []string{"/healthz", "/readyz", "/status"} {
		if code, _ := get(p); code != 503 {
			t.Errorf("%s after the master stopped: %d", p, code)
		}
	}
	a.mu.Lock()
	if len(a.waits) != 0 {
		t.Errorf("%d stats requests still registered", len(a.waits))
	}
	a.mu.Unlock()

	// Closed, the endpoint leaves no goroutine behind.
	stopOnce.Do(func() { close(stop) })
	a.close()
	http.DefaultClient.CloseIdleConnections()
	if extra := newGoroutines(before, bound); len(extra) > 0 {
		t.Errorf("goroutines left behind:\n%s", strings.Join(extra, "\n\n"))
	}
}

// TestValidAdmin: the admin address is HOST:PORT.
func TestValidAdmin(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9090": true, "[::1]:0": true, ":9090": true, "localhost:9090": true,
		"127.0.0.1": false, "127.0.0.1:http": false, "127.0.0.1:70000": false, "tcp://127.0.0.1:9090": false,
	} {
		if err := validAdmin(addr); (err == nil) != ok {
			t.Errorf("validAdmin(%q) = %v", addr, err)
		}
	}
	cfg := DefaultConfig()
	cfg.AdminPprof = true
	if err := cfg.Validate(); err == nil {
		t.Error("AdminPprof without Admin: valid")
	}
}

// TestIsLoopback: only loopback addresses are quiet; the unspecified ones
// listen everywhere.
func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090": true, "127.1.2.3:9090": true, "[::1]:9090": true,
		"0.0.0.0:9090": false, "[::]:9090": false, "10.0.0.1:9090": false, "192.168.1.2:9090": false,
	} {
		ta, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := isLoopback(ta); got != want {
			t.Errorf("isLoopback(%s) = %v", addr, got)
		}
	}
}
