package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/subordinate/subordinate/internal/cluster"
	"github.com/subordinate/subordinate/internal/ctl"
)

// The admin endpoint (Config.Admin): the master serves HTTP on its own
// goroutines, never in a worker. It asks the supervisor (the goroutine
// that owns the workers' state) for a view of the workers, and, for
// /metrics and /status, each worker for its figures over the control
// channel, waiting at most adminStatsTimeout: a worker that does not
// answer by then is reported down, and the answer goes out without it.
// See docs/METRICS.md.
const (
	// adminStatsTimeout bounds the wait for the workers' figures.
	adminStatsTimeout = time.Second
	// adminViewTimeout bounds the wait for the supervisor's view (it is
	// busy at most for a control message write).
	adminViewTimeout = 6 * time.Second
	// statsSendTimeout bounds the write of a stats request: a worker
	// whose control socket has no room for a few bytes is not reading.
	statsSendTimeout = 100 * time.Millisecond
)

// adminServer is the master's HTTP admin endpoint.
type adminServer struct {
	log    *slog.Logger
	ln     net.Listener
	srv    *http.Server
	pprof  bool
	start  time.Time
	listen []string
	build  BuildInfo
	// node and nodes place the server in its cluster (nodes 0: none).
	node, nodes int

	// reqs carries the handlers' requests to the supervisor; done is
	// closed when the supervisor has stopped.
	reqs     chan adminReq
	done     chan struct{}
	doneOnce sync.Once

	nextID atomic.Uint64
	mu     sync.Mutex
	waits  map[uint64]chan shardAnswer // stats requests in flight, by ID

	reg *prometheus.Registry
}

// adminReq asks the supervisor for its view; with id > 0 it also sends
// every running worker a stats request of that number.
type adminReq struct {
	id    uint64
	reply chan adminView
}

// adminView is the supervisor's state as the admin endpoint reports it.
type adminView struct {
	// State is the master's: starting (not every worker has been ready
	// yet), running, draining or stopping.
	State string
	// Ready: the master is running (not draining) and every shard's
	// worker has been ready at least once.
	Ready bool
	// Healthy: every worker is alive and ready.
	Healthy bool
	Workers []workerView
}

// workerView is one shard's worker as the supervisor sees it.
type workerView struct {
	Shard int
	// Pid is the worker's process id, 0 when none is alive.
	Pid int
	// State is starting, running, draining, restarting (waiting for its
	// restart) or exited.
	State    string
	Up       bool // alive and ready
	Restarts int
	Started  time.Time // of the process alive, if any
	Asked    bool      // a stats request was sent to it
}

// shardAnswer is a worker's answer to a stats request.
type shardAnswer struct {
	shard int
	snap  json.RawMessage
}

// listenAdmin binds the admin endpoint of cfg (the master's, before any
// worker starts) and logs its address. A non-loopback address is allowed
// but logged as a warning.
func listenAdmin(cfg *Config, log *slog.Logger, listen []string, members cluster.Members) (*adminServer, error) {
	ln, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		return nil, fmt.Errorf("admin endpoint: %w", err)
	}
	a := &adminServer{
		log: log, ln: ln, pprof: cfg.AdminPprof, start: time.Now(), listen: listen,
		build: ReadBuildInfo(), node: members.Self, nodes: members.Size(),
		reqs: make(chan adminReq), done: make(chan struct{}),
		waits: make(map[uint64]chan shardAnswer),
		reg:   prometheus.NewRegistry(),
	}
	a.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		clusterCollector{a},
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /status", a.status)
	if a.pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	a.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	addr := ln.Addr().String()
	log.Info("admin listening", "addr", addr, "pprof", a.pprof)
	if !isLoopback(ln.Addr()) {
		log.Warn("the admin endpoint listens on a non-loopback address: whoever reaches it sees the server's figures"+
			" (and, with --admin-pprof, can profile the master); keep it on loopback or a private network", "addr", addr)
	}
	return a, nil
}

// serve serves HTTP until close. It runs on its own goroutine.
func (a *adminServer) serve() {
	if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Error("admin endpoint stopped", "err", err)
	}
}

// stopped tells the handlers that the supervisor is gone.
func (a *adminServer) stopped() {
	if a != nil {
		a.doneOnce.Do(func() { close(a.done) })
	}
}

// close stops the endpoint: the listener and every connection.
func (a *adminServer) close() {
	a.stopped()
	_ = a.srv.Close()
}

// requests is the channel of the handlers' requests, nil without an admin
// endpoint (a select case that never fires).
func (a *adminServer) requests() <-chan adminReq {
	if a == nil {
		return nil
	}
	return a.reqs
}

// deliver hands a worker's answer to the request waiting for it, from
// the worker's control reader.
func (a *adminServer) deliver(shard int, st *ctl.Stats) {
	if a == nil || st == nil {
		return
	}
	a.mu.Lock()
	ch := a.waits[st.ID]
	a.mu.Unlock()
	if ch != nil {
		select {
		case ch <- shardAnswer{shard: shard, snap: st.Snapshot}:
		default: // a duplicate: the channel has room for one per shard
		}
	}
}

// errAdminStopped is returned by gather once the master is stopping.
var errAdminStopped = errors.New("the master is stopping")

// gather asks the supervisor for its view and, with stats, every running
// worker for its figures. It returns the figures of the workers that
// answered within adminStatsTimeout, by shard.
func (a *adminServer) gather(ctx context.Context, stats bool) (adminView, map[int]*workerStats, error) {
	req := adminReq{reply: make(chan adminView, 1)}
	var answers chan shardAnswer
	if stats {
		req.id = a.nextID.Add(1)
		answers = make(chan shardAnswer, MaxWorkers)
		a.mu.Lock()
		a.waits[req.id] = answers
		a.mu.Unlock()
		defer func() {
			a.mu.Lock()
			delete(a.waits, req.id)
			a.mu.Unlock()
		}()
	}
	ctx, cancel := context.WithTimeout(ctx, adminViewTimeout)
	defer cancel()
	var view adminView
	select {
	case a.reqs <- req:
	case <-a.done:
		return view, nil, errAdminStopped
	case <-ctx.Done():
		return view, nil, ctx.Err()
	}
	select {
	case view = <-req.reply:
	case <-a.done:
		return view, nil, errAdminStopped
	case <-ctx.Done():
		return view, nil, ctx.Err()
	}
	if !stats {
		return view, nil, nil
	}
	asked := 0
	for _, w := range view.Workers {
		if w.Asked {
			asked++
		}
	}
	got := make(map[int]*workerStats, asked)
	t := time.NewTimer(adminStatsTimeout)
	defer t.Stop()
	for len(got) < asked {
		select {
		case ans := <-answers:
			var ws workerStats
			if err := json.Unmarshal(ans.snap, &ws); err != nil {
				a.log.Warn("bad stats from a worker", "shard", ans.shard, "err", err)
				continue
			}
			ws.Shard = ans.shard
			got[ans.shard] = &ws
		case <-t.C:
			return view, got, nil
		case <-ctx.Done():
			return view, got, nil
		}
	}
	return view, got, nil
}

// adminView answers an admin request, on the supervisor's goroutine:
// the workers' state and, when id > 0, a stats request sent to each
// worker that is ready.
func (s *supervisor) adminView(id uint64) adminView {
	v := adminView{Ready: s.state == running, Healthy: true}
	switch s.state {
	case running:
		v.State = "running"
	case draining:
		v.State = "draining"
	default:
		v.State = "stopping"
	}
	for _, w := range s.workers {
		up := w.alive && !w.ready.IsZero()
		wv := workerView{Shard: w.index, Up: up, Restarts: max(w.gen-1, 0)}
		switch {
		case up && s.state == running:
			wv.State = "running"
		case up:
			wv.State = v.State
		case w.alive:
			wv.State = "starting"
		case s.state == running && w.gen > 0:
			wv.State = "restarting"
		default:
			wv.State = "exited"
		}
		if w.alive {
			wv.Pid, wv.Started = w.pid, w.started
		}
		if !up {
			v.Healthy = false
		}
		if !w.everReady {
			v.Ready = false
			if s.state == running {
				v.State = "starting"
			}
		}
		if id > 0 && up {
			_ = w.ctl.SetWriteDeadline(time.Now().Add(statsSendTimeout))
			err := w.ctl.Send(&ctl.Message{Type: ctl.TypeStats, Stats: &ctl.Stats{ID: id}})
			_ = w.ctl.SetWriteDeadline(time.Time{})
			if err != nil {
				s.log.Debug("cannot ask a worker for its figures", "shard", w.index, "worker_pid", w.pid, "err", err)
			} else {
				wv.Asked = true
			}
		}
		v.Workers = append(v.Workers, wv)
	}
	return v
}

// index lists the endpoints.
func (a *adminServer) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "subordinate admin endpoint")
	fmt.Fprintln(w, "  /metrics  Prometheus metrics (docs/METRICS.md)")
	fmt.Fprintln(w, "  /healthz  200 while every worker runs, 503 otherwise")
	fmt.Fprintln(w, "  /readyz   200 while the server accepts, 503 while starting or draining")
	fmt.Fprintln(w, "  /status   the master and its workers, as JSON")
	if a.pprof {
		fmt.Fprintln(w, "  /debug/pprof/  the master's profiles")
	}
}

// healthz answers 200 while every worker is alive and ready.
func (a *adminServer) healthz(w http.ResponseWriter, r *http.Request) {
	view, _, err := a.gather(r.Context(), false)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "unhealthy:", err)
		return
	}
	if view.Healthy {
		fmt.Fprintln(w, "ok")
		return
	}
	var down []string
	for _, wv := range view.Workers {
		if !wv.Up {
			down = append(down, fmt.Sprintf("shard %d %s", wv.Shard, wv.State))
		}
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintln(w, "unhealthy:", strings.Join(down, ", "))
}

// readyz answers 200 while the master accepts connections: it runs, is
// not draining, and every shard's worker has been ready.
func (a *adminServer) readyz(w http.ResponseWriter, r *http.Request) {
	view, _, err := a.gather(r.Context(), false)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case err != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready:", err)
	case view.Ready:
		fmt.Fprintln(w, "ready")
	default:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready:", view.State)
	}
}

// Status is the JSON of the admin endpoint's /status (what
// `subordinate status` prints).
type Status struct {
	BuildInfo
	// Pid is the master's process id.
	Pid int `json:"pid"`
	// Started is when the master started; Uptime is how long ago, in
	// seconds.
	Started time.Time `json:"started"`
	Uptime  float64   `json:"uptime_seconds"`
	// State is the master's: starting, running, draining or stopping.
	State string `json:"state"`
	// Ready and Healthy are what /readyz and /healthz answer.
	Ready   bool `json:"ready"`
	Healthy bool `json:"healthy"`
	// Listen are the listeners, as the master bound them.
	Listen []string `json:"listen"`
	// Cluster is the server's place in its cluster (docs/CLUSTER.md);
	// nil outside one.
	Cluster *ClusterStatus `json:"cluster,omitempty"`
	// Workers are the shards' workers, by index.
	Workers []WorkerStatus `json:"workers"`
}

// ClusterStatus is a node's place in its cluster.
type ClusterStatus struct {
	// Node is this node's index, Nodes the number of nodes.
	Node  int `json:"node"`
	Nodes int `json:"nodes"`
}

// WorkerStatus is one shard's worker in Status.
type WorkerStatus struct {
	Shard int `json:"shard"`
	// Pid is 0 when no worker of the shard is alive.
	Pid int `json:"pid"`
	// State is starting, running, draining, stopping, restarting or
	// exited.
	State string `json:"state"`
	// Restarts counts the shard's workers started after the first.
	Restarts int `json:"restarts"`
	// Uptime is the worker process's, in seconds (0 when none is alive).
	Uptime float64 `json:"uptime_seconds"`
	// Answered: the worker answered the master's request for its
	// figures in time; Connections is then set.
	Answered bool `json:"answered"`
	// Connections are the connections the shard's handler serves.
	Connections *int `json:"connections,omitempty"`
	// NodeLinks is, in a cluster, how many of the worker's links to the
	// other nodes are up (of Status.Cluster.Nodes - 1), when it answered.
	NodeLinks *int `json:"node_links,omitempty"`
}

// status answers the master's and its workers' state as JSON.
func (a *adminServer) status(w http.ResponseWriter, r *http.Request) {
	view, stats, err := a.gather(r.Context(), true)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(a.statusOf(view, stats, time.Now()))
}

// statusOf builds the Status of a view and the workers' figures.
func (a *adminServer) statusOf(view adminView, stats map[int]*workerStats, now time.Time) Status {
	st := Status{
		BuildInfo: a.build, Pid: os.Getpid(), Started: a.start, Uptime: now.Sub(a.start).Seconds(),
		State: view.State, Ready: view.Ready, Healthy: view.Healthy, Listen: a.listen,
		Workers: make([]WorkerStatus, 0, len(view.Workers)),
	}
	if a.nodes > 0 {
		st.Cluster = &ClusterStatus{Node: a.node, Nodes: a.nodes}
	}
	for _, wv := range view.Workers {
		ws := WorkerStatus{Shard: wv.Shard, Pid: wv.Pid, State: wv.State, Restarts: wv.Restarts}
		if wv.Pid != 0 {
			ws.Uptime = now.Sub(wv.Started).Seconds()
		}
		if s := stats[wv.Shard]; s != nil && s.Pid == wv.Pid {
			ws.Answered = true
			if s.Loop {
				n := s.Active
				ws.Connections = &n
			}
			if a.nodes > 0 {
				up := 0
				for _, p := range s.Nodes {
					if p.Up {
						up++
					}
				}
				ws.NodeLinks = &up
			}
		}
		st.Workers = append(st.Workers, ws)
	}
	sort.Slice(st.Workers, func(i, j int) bool { return st.Workers[i].Shard < st.Workers[j].Shard })
	return st
}

// validAdmin checks an admin address: HOST:PORT (HOST may be empty: every
// address, which is logged as a warning).
func validAdmin(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: want HOST:PORT: %v", addr, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && port != "0") {
		return fmt.Errorf("admin address %q: bad port %q", addr, port)
	}
	return nil
}

// isLoopback reports whether a is a loopback TCP address (an unspecified
// one, 0.0.0.0 or ::, is every address: not loopback).
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
