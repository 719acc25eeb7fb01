package server

import (
	"context"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics of the admin endpoint: docs/METRICS.md lists each one. The
// workers' figures are gathered when a scrape comes (clusterCollector) and
// rendered as constant metrics; nothing is kept between scrapes, so a
// worker's counters start again from zero when it restarts (Prometheus's
// rate() and increase() handle counter resets).

// Descriptions of the metrics, by name.
var (
	descAccepted = prometheus.NewDesc("subordinate_connections_accepted_total",
		"Connections accepted on the listeners by the shard's worker (refused ones included).", []string{"shard"}, nil)
	descActive = prometheus.NewDesc("subordinate_connections_active",
		"Connections the shard's handler serves now (opened and not yet closed).", []string{"shard"}, nil)
	descOpened = prometheus.NewDesc("subordinate_connections_opened_total",
		"Connections given to the shard's handler, by how they reached it: local (accepted here), handoff or relay (accepted by another worker).", []string{"shard", "how"}, nil)
	descForwarded = prometheus.NewDesc("subordinate_connections_forwarded_total",
		"Connections the shard's worker accepted and sent to the shard that owns their key, by how: handoff (the socket) or relay (the bytes, over the mesh).", []string{"shard", "how"}, nil)
	descSockets = prometheus.NewDesc("subordinate_sockets_open",
		"Client sockets the shard's worker holds (what --max-conns bounds).", []string{"shard"}, nil)
	descMaxConns = prometheus.NewDesc("subordinate_max_conns",
		"The most client sockets the shard's worker holds before it refuses (busy).", []string{"shard"}, nil)
	descRefused = prometheus.NewDesc("subordinate_refused_total",
		"Connections refused by the shard's worker, by reason.", []string{"shard", "reason"}, nil)
	descBytesIn = prometheus.NewDesc("subordinate_bytes_received_total",
		"Bytes the shard's handler received from its clients, past the key (decrypted for TLS; a hijacked connection's when it closes).", []string{"shard"}, nil)
	descBytesOut = prometheus.NewDesc("subordinate_bytes_sent_total",
		"Bytes the shard's handler wrote to its clients (before TLS; a hijacked connection's when it closes).", []string{"shard"}, nil)
	descTLS = prometheus.NewDesc("subordinate_tls_handshakes_total",
		"TLS handshakes on the shard's tls:// listeners, by result: ok, failed, timeout, not_tls.", []string{"shard", "result"}, nil)
	descPanics = prometheus.NewDesc("subordinate_handler_panics_total",
		"Panics of handler code recovered by the shard (each closed one connection, or was in a function run on the loop).", []string{"shard"}, nil)
	descIdle = prometheus.NewDesc("subordinate_idle_closed_total",
		"Connections the shard closed for their idle timeout.", []string{"shard"}, nil)
	descFDs = prometheus.NewDesc("subordinate_worker_descriptors_open",
		"Descriptors open in the shard's worker process.", []string{"shard"}, nil)
	descFDLimit = prometheus.NewDesc("subordinate_worker_descriptors_limit",
		"The shard's worker's descriptor limit (RLIMIT_NOFILE), where the descriptor guard knows it.", []string{"shard"}, nil)
	descAcceptPauses = prometheus.NewDesc("subordinate_accept_pauses_total",
		"Times the shard's worker paused accepting because its descriptors were nearly exhausted.", []string{"shard"}, nil)
	descAcceptPaused = prometheus.NewDesc("subordinate_accept_paused",
		"1 while the shard's worker has paused accepting (descriptors nearly exhausted).", []string{"shard"}, nil)
	descTLSReloads = prometheus.NewDesc("subordinate_tls_reloads_total",
		"Certificate reloads (SIGHUP) the shard's worker applied.", []string{"shard"}, nil)
	descTLSReloadFailures = prometheus.NewDesc("subordinate_tls_reload_failures_total",
		"Certificate reloads (SIGHUP) the shard's worker refused (unreadable or mismatched files); it kept the certificates in use.", []string{"shard"}, nil)
	descDraining = prometheus.NewDesc("subordinate_worker_draining",
		"1 while the shard's worker drains.", []string{"shard"}, nil)
	descUp = prometheus.NewDesc("subordinate_worker_up",
		"1 if the shard's worker is alive, ready and answered this scrape in time; 0 otherwise.", []string{"shard"}, nil)
	descRestarts = prometheus.NewDesc("subordinate_worker_restarts_total",
		"Workers the master started for the shard after its first.", []string{"shard"}, nil)
	descGoroutines = prometheus.NewDesc("subordinate_worker_goroutines",
		"Goroutines of the shard's worker process.", []string{"shard"}, nil)
	descHeap = prometheus.NewDesc("subordinate_worker_heap_bytes",
		"Bytes of heap objects of the shard's worker process (live and not yet swept).", []string{"shard"}, nil)
	descMeshUp = prometheus.NewDesc("subordinate_mesh_link_up",
		"1 if the shard's mesh session to peer is up.", []string{"shard", "peer"}, nil)
	descMeshStreams = prometheus.NewDesc("subordinate_mesh_streams",
		"Streams open on the shard's mesh session to peer (relayed connections).", []string{"shard", "peer"}, nil)
	descMeshLinks = prometheus.NewDesc("subordinate_mesh_links_total",
		"Mesh links to peer the shard's worker was given (one more each time either restarts).", []string{"shard", "peer"}, nil)
	descMeshDowns = prometheus.NewDesc("subordinate_mesh_link_downs_total",
		"Mesh sessions to peer that died.", []string{"shard", "peer"}, nil)
	descMeshOpened = prometheus.NewDesc("subordinate_mesh_streams_opened_total",
		"Streams the shard opened to peer.", []string{"shard", "peer"}, nil)
	descMeshAccepted = prometheus.NewDesc("subordinate_mesh_streams_accepted_total",
		"Streams the shard accepted from peer.", []string{"shard", "peer"}, nil)
	descNodeUp = prometheus.NewDesc("subordinate_node_link_up",
		"1 if the shard's link to the same worker of cluster node is up.", []string{"shard", "node"}, nil)
	descNodeStreams = prometheus.NewDesc("subordinate_node_streams",
		"Streams open on the shard's link to node (connections relayed either way).", []string{"shard", "node"}, nil)
	descNodeLinks = prometheus.NewDesc("subordinate_node_links_total",
		"Links the shard made with node (one more each time either comes back).", []string{"shard", "node"}, nil)
	descToNode = prometheus.NewDesc("subordinate_node_forwarded_total",
		"Connections the shard relayed to the node that owns their key.", []string{"shard"}, nil)
	descFromNode = prometheus.NewDesc("subordinate_node_received_total",
		"Connections another node relayed to the shard, their owner.", []string{"shard"}, nil)
	descWorkers = prometheus.NewDesc("subordinate_workers",
		"Shards (worker processes) the master runs.", nil, nil)
	descReady = prometheus.NewDesc("subordinate_ready",
		"1 while the master accepts connections (what /readyz answers 200 to).", nil, nil)
	descHealthy = prometheus.NewDesc("subordinate_healthy",
		"1 while every worker runs (what /healthz answers 200 to).", nil, nil)
	descBuild = prometheus.NewDesc("subordinate_build_info",
		"The binary's build: module version, VCS revision, Go version. Always 1.", []string{"version", "revision", "goversion"}, nil)
)

// clusterCollector collects the figures of the master and its workers,
// gathered when a scrape comes.
type clusterCollector struct{ a *adminServer }

// Describe implements prometheus.Collector: it describes nothing, so the
// collector is unchecked (its series depend on the workers that answer).
func (clusterCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c clusterCollector) Collect(ch chan<- prometheus.Metric) {
	view, stats, err := c.a.gather(context.Background(), true)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descUp, err)
		return
	}
	collectCluster(ch, view, stats, c.a.build)
}

// collectCluster renders a view and the workers' figures (by shard; a
// worker that did not answer is absent) as metrics.
func collectCluster(ch chan<- prometheus.Metric, view adminView, stats map[int]*workerStats, build BuildInfo) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descBuild, 1, build.Version, build.Revision, build.GoVersion)
	gauge(descWorkers, float64(len(view.Workers)))
	gauge(descReady, b2f(view.Ready))
	gauge(descHealthy, b2f(view.Healthy))
	for _, wv := range view.Workers {
		shard := strconv.Itoa(wv.Shard)
		counter(descRestarts, uint64(wv.Restarts), shard)
		s := stats[wv.Shard]
		if s == nil || s.Pid != wv.Pid {
			gauge(descUp, 0, shard)
			continue
		}
		gauge(descUp, 1, shard)
		gauge(descGoroutines, float64(s.Goroutines), shard)
		gauge(descHeap, float64(s.HeapBytes), shard)
		gauge(descSockets, float64(s.Sockets), shard)
		gauge(descMaxConns, float64(s.MaxConns), shard)
		counter(descPanics, s.Panics, shard)
		counter(descIdle, s.IdleClose, shard)
		counter(descAcceptPauses, s.AcceptPauses, shard)
		counter(descTLSReloads, s.TLSReloads, shard)
		counter(descTLSReloadFailures, s.TLSReloadFailures, shard)
		if s.FDs > 0 {
			gauge(descFDs, float64(s.FDs), shard)
		}
		if s.FDLimit > 0 {
			gauge(descFDLimit, float64(s.FDLimit), shard)
		}
		for _, k := range sortedKeys(s.Refused) {
			counter(descRefused, s.Refused[k], shard, k)
		}
		for _, k := range sortedKeys(s.TLS) {
			counter(descTLS, s.TLS[k], shard, k)
		}
		if s.Loop { // the loop's own figures: absent when it did not answer
			for _, k := range sortedKeys(s.Forwarded) {
				counter(descForwarded, s.Forwarded[k], shard, k)
			}
			gauge(descDraining, b2f(s.Draining), shard)
			gauge(descAcceptPaused, b2f(s.AcceptPaused), shard)
			counter(descAccepted, s.Accepted, shard)
			gauge(descActive, float64(s.Active), shard)
			counter(descBytesIn, s.BytesIn, shard)
			counter(descBytesOut, s.BytesOut, shard)
			for _, k := range sortedKeys(s.Opened) {
				counter(descOpened, s.Opened[k], shard, k)
			}
		}
		for _, p := range s.Mesh {
			peer := strconv.Itoa(p.Peer)
			gauge(descMeshUp, b2f(p.Up), shard, peer)
			gauge(descMeshStreams, float64(p.Streams), shard, peer)
			counter(descMeshLinks, p.Links, shard, peer)
			counter(descMeshDowns, p.Downs, shard, peer)
			counter(descMeshOpened, p.Opened, shard, peer)
			counter(descMeshAccepted, p.Accepted, shard, peer)
		}
		for _, p := range s.Nodes {
			node := strconv.Itoa(p.Node)
			gauge(descNodeUp, b2f(p.Up), shard, node)
			gauge(descNodeStreams, float64(p.Streams), shard, node)
			counter(descNodeLinks, p.Links, shard, node)
		}
		if s.Nodes != nil {
			counter(descToNode, s.ToNode, shard)
			counter(descFromNode, s.FromNode, shard)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
