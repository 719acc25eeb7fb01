//go:build linux

package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The issue-14 suite (-issue14): what a key owned by another node costs,
// as ratios of server CPU measured in the same run. N nodes of 1 worker
// each, every client on node 0, so that (N-1)/N of the connections cross
// to another node; against the same N processes as 1 node of N workers
// (the same fraction handed to another worker), and against what a user
// would run instead: HAProxy routing by key to N 1-worker servers.

// The suite's rows.
const (
	row14One     = "one"     // 1 node, 1 worker: the reference
	row14Same    = "same"    // 1 node, N workers, hand-off
	row14Relay   = "relay"   // 1 node, N workers, relay over the mesh
	row14Cluster = "cluster" // N nodes, 1 worker each, clients on node 0
	row14HAProxy = "haproxy" // HAProxy -> N 1-worker servers
)

// issue14Rows lists the suite's rows.
func issue14Rows() []row {
	return []row{
		{ID: row14One, Label: "Subordinate, 1 node, 1 worker", start: startSub(1, "")},
		{ID: row14Same, Label: "Subordinate, 1 node, N workers (handoff)", start: startSub(0, "handoff")},
		{ID: row14Relay, Label: "Subordinate, 1 node, N workers (relay)", start: startSub(0, "relay")},
		{ID: row14Cluster, Label: "Subordinate, N nodes of 1 worker, clients on node 0", start: startCluster},
		{ID: row14HAProxy, Label: "HAProxy -> N Subordinate 1-worker servers", start: startHAProxyOver("subordinate 1-worker", "", func(e *env, i int, baddr string) []string {
			return []string{e.cfg.Subordinate, "serve", "--listen", "tcp://" + baddr, "--workers", "1", "--handler", "echo", "--frame", "line"}
		})},
	}
}

// startCluster starts N nodes of one worker on this machine, linked by
// mutual TLS on loopback ports, node 0 serving clients on addr: every
// process of the row is one of its nodes.
func startCluster(e *env, addr string) (*server, error) {
	cert, err := e.testCert()
	if err != nil {
		return nil, err
	}
	n := e.cfg.Workers
	s := &server{Addr: addr}
	var list []string
	for i := 0; i < n; i++ {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		list = append(list, a)
	}
	flags := []string{"--workers", "1", "--handler", "echo", "--frame", "line", "--nodes", strings.Join(list, ","),
		"--cluster-cert", cert.certFile, "--cluster-key", cert.keyFile, "--cluster-ca", cert.certFile}
	s.note = fmt.Sprintf("%d x subordinate serve %s --node-index I --cluster-listen tls://NODE_I; clients on node 0", n, strings.Join(flags, " "))
	for i := 0; i < n; i++ {
		listen := addr
		if i > 0 {
			if listen, err = freeAddr(); err != nil {
				s.stop()
				return nil, err
			}
		}
		argv := append([]string{e.cfg.Subordinate, "serve", "--listen", "tcp://" + listen,
			"--node-index", strconv.Itoa(i), "--cluster-listen", "tls://" + list[i]}, flags...)
		if err := e.launch(s, fmt.Sprintf("cluster-node%d", i), argv...); err != nil {
			s.stop()
			return nil, err
		}
	}
	// Served once keys of every node echo: the links are up.
	s.probe = func(addr string) error { return probeKeys(addr, "", nil) }
	return s, nil
}

// issue14Lines lists the summary's lines, for each workload: crossing
// nodes against crossing workers, against HAProxy, and both against one
// worker.
func issue14Lines(workers any) []target {
	round := func(v float64) float64 { return math.Round(v*100) / 100 }
	ratio := func(f figure) string { return fmt.Sprintf("%.2f", f.v) }
	le1 := func(v float64) bool { return round(v) <= 1 }
	var ts []target
	for _, wl := range []struct{ id, per string }{
		{"pingpong", "server CPU per request, ping-pong"},
		{"connect", "server CPU per connection, connect per request"},
	} {
		ts = append(ts,
			target{label: fmt.Sprintf("%s: %v nodes ÷ 1 node of %v workers", wl.per, workers, workers), goal: "–", show: ratio,
				eval: cpuRatio(row14Cluster, row14Same, wl.id)},
			target{label: fmt.Sprintf("%s: %v nodes ÷ 1 node of %v workers relaying (the same relay, no TLS, no TCP)", wl.per, workers, workers), goal: "–", show: ratio,
				eval: cpuRatio(row14Cluster, row14Relay, wl.id)},
			target{label: fmt.Sprintf("%s: %v nodes ÷ HAProxy over %v servers", wl.per, workers, workers), goal: "≤ 1", met: le1, show: ratio,
				eval: cpuRatio(row14Cluster, row14HAProxy, wl.id)},
			target{label: fmt.Sprintf("%s: %v nodes ÷ 1 worker", wl.per, workers), goal: "–", show: ratio,
				eval: cpuRatio(row14Cluster, row14One, wl.id)},
			target{label: fmt.Sprintf("%s: 1 node of %v workers ÷ 1 worker", wl.per, workers), goal: "–", show: ratio,
				eval: cpuRatio(row14Same, row14One, wl.id)},
		)
	}
	return ts
}

// issue14Markdown renders the issue-14 summary of sets (one per pinning
// setting, each measured in one run).
func issue14Markdown(sets []*results) string {
	if len(sets) == 0 {
		return ""
	}
	var b strings.Builder
	first := sets[0]
	workers := first.Config["workers"]
	b.WriteString("### Issue 14 targets: a key on another node, in one run\n\n")
	fmt.Fprintf(&b, "N = %v. The cluster is N `subordinate serve --workers 1` nodes on this machine, linked by mutual TLS 1.3 over loopback, "+
		"every client connecting to node 0: (N-1)/N of the connections are relayed to another node. "+
		"1 node of N workers is the same N processes as one server (the same share of connections handed to another worker, or relayed over the mesh with `--forward relay`: the cluster's relay without TLS or TCP); "+
		"HAProxy routes by key to N 1-worker servers, what a user would run instead of a cluster. "+
		"Server CPU is user+system time of every process of the row (all nodes; HAProxy and its backends), per request (ping-pong on established connections) "+
		"or per connection (connect per request: dial, key, one %v-byte echo, close), from medians over %v run(s) of %v per cell, rows measured in the same run, interleaved. "+
		"The issue names no ratio; the HAProxy line's target is ours: a cluster should cost no more than the proxy it replaces.\n\n",
		workers, first.Config["size"], first.Config["runs"], first.Config["duration"])
	writeTargets(&b, issue14Lines(workers), sets)
	return b.String()
}
