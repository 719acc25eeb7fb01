package main

// Clusters (docs/CLUSTER.md) with real processes: each node is a
// `subordinate serve` of its own on its own loopback address (127.0.0.2,
// 127.0.0.3, ...), linked to the others by mutual TLS.

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
	"github.com/subordinate/subordinate/shard"
)

// clusterNode is one node of a test cluster.
type clusterNode struct {
	*master
	index int
	args  []string // serve's arguments, to start it again
}

// testCluster is a cluster of nodes on this machine.
type testCluster struct {
	nodes   []*clusterNode
	list    []string // the --nodes list
	workers int
	scheme  string         // of the client listeners; "" is tcp
	bins    map[int]string // the binary of a node, if not the test's
}

var (
	nodeRE    = regexp.MustCompile(` node=(\d+)`)
	viaNodeRE = regexp.MustCompile(` via_node=(\d+)`)
)

// nodeHost is the loopback address of node i.
func nodeHost(i int) string { return fmt.Sprintf("127.0.0.%d", 2+i) }

// portsGiven are the ports freePorts returned, by host: tests running in
// parallel must not be given the same ones.
var portsGiven = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

// Cluster ports come from below Linux's default ephemeral range (32768 to
// 60999): a port probed free there is not taken a moment later by the
// kernel for a listener on port 0 (every node's client listener) or an
// outgoing connection.
const clusterPortLow, clusterPortHigh = 20000, 32000

// freePorts returns a port p of host such that p to p+n-1 are free, and
// were not given to another test: a node's workers listen on its cluster
// port plus their index.
func freePorts(t *testing.T, host string, n int) int {
	t.Helper()
	portsGiven.Lock()
	defer portsGiven.Unlock()
	for try := 0; try < 200; try++ {
		p := clusterPortLow + rand.IntN(clusterPortHigh-clusterPortLow-n)
		ok := true
		for k := 0; ok && k < n; k++ {
			addr := net.JoinHostPort(host, strconv.Itoa(p+k))
			if portsGiven.m[addr] {
				ok = false
				break
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			for k := 0; k < n; k++ {
				portsGiven.m[net.JoinHostPort(host, strconv.Itoa(p+k))] = true
			}
			return p
		}
	}
	t.Fatalf("no %d free ports in a row on %s", n, host)
	return 0
}

// startCluster starts n nodes of workers workers each, all with the
// certificate cert (its own CA), and waits until every worker is linked
// with its namesake on every other node. args go to every node.
func startCluster(t *testing.T, n, workers int, args ...string) *testCluster {
	t.Helper()
	return startClusterBins(t, n, workers, nil, args...)
}

// startClusterBins is startCluster with some nodes running another copy
// of the binary (bins, by node), to be upgraded.
func startClusterBins(t *testing.T, n, workers int, bins map[int]string, args ...string) *testCluster {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = nodeHost(i)
	}
	cert, key := proctest.NodeCert(t, names...)
	c := &testCluster{workers: workers, bins: bins}
	for i := 0; i < n; i++ {
		c.list = append(c.list, net.JoinHostPort(nodeHost(i), strconv.Itoa(freePorts(t, nodeHost(i), workers))))
	}
	for i := 0; i < n; i++ {
		c.nodes = append(c.nodes, c.start(t, i, cert, key, cert, args...))
	}
	for _, nd := range c.nodes {
		c.waitLinks(t, nd, 1)
	}
	return c
}

// start starts node i with the given certificate, key and CA.
func (c *testCluster) start(t *testing.T, i int, cert, key, ca string, args ...string) *clusterNode {
	t.Helper()
	scheme := c.scheme
	if scheme == "" {
		scheme = "tcp"
	}
	all := append([]string{
		"--listen", scheme + "://" + net.JoinHostPort(nodeHost(i), "0"),
		"--nodes", strings.Join(c.list, ","), "--node-index", strconv.Itoa(i),
		"--cluster-listen", "tls://" + c.list[i],
		"--cluster-cert", cert, "--cluster-key", key, "--cluster-ca", ca,
	}, args...)
	bin := binary
	if b := c.bins[i]; b != "" {
		bin = b
	}
	return &clusterNode{master: serveBinary(t, bin, c.workers, all...), index: i, args: all}
}

// restart starts node nd again, as it was started, and waits for its
// links (the others' nth link to it).
func (c *testCluster) restart(t *testing.T, nd *clusterNode, nth int) {
	t.Helper()
	c.nodes[nd.index] = &clusterNode{master: serve(t, c.workers, nd.args...), index: nd.index, args: nd.args}
	c.waitLinks(t, c.nodes[nd.index], 1)
	for _, o := range c.nodes {
		if o.index == nd.index {
			continue
		}
		for w := 0; w < c.workers; w++ {
			o.WaitLog(soon, nth, func(l proctest.Line) bool { return l.Is("node link up", "shard", w, "peer", nd.index) })
		}
	}
}

// waitLinks waits until every worker of nd logged its nth link to each
// other node up.
func (c *testCluster) waitLinks(t *testing.T, nd *clusterNode, nth int) {
	t.Helper()
	for w := 0; w < c.workers; w++ {
		for p := range c.nodes {
			if p != nd.index {
				nd.WaitLog(soon, nth, func(l proctest.Line) bool { return l.Is("node link up", "shard", w, "peer", p) })
			}
		}
	}
}

// checkLinked waits until every node is linked with every other, then
// checks that a key of every node and worker reaches its owner from every
// node.
func (c *testCluster) checkLinked(t *testing.T) {
	t.Helper()
	for _, nd := range c.nodes {
		c.waitLinks(t, nd, 1)
	}
	for _, nd := range c.nodes {
		for node := range c.nodes {
			for worker := 0; worker < c.workers; worker++ {
				c.checkPlace(t, nd, c.keyOn(node, worker, 0))
			}
		}
	}
}

// whoami is a whoami reply in a cluster.
type whoami struct {
	shard, node, viaNode, pid int
	conn                      net.Conn
	r                         *bufio.Reader
}

// dialKey connects to nd with key and reads the whoami reply, or the
// -ERR line that refused it (err).
func dialKey(t *testing.T, nd *clusterNode, key string) (w *whoami, errLine string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", nd.addr, soon)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(soon))
	if _, err := fmt.Fprintf(c, "%s\n", key); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("node %d, key %q: reply: %v", nd.index, key, err)
	}
	if strings.HasPrefix(line, "-ERR ") {
		c.Close()
		return nil, strings.TrimSpace(line)
	}
	w = &whoami{conn: c, r: r, shard: -1, node: -1, viaNode: -1, pid: -1}
	for re, v := range map[*regexp.Regexp]*int{shardRE: &w.shard, nodeRE: &w.node, viaNodeRE: &w.viaNode, pidRE: &w.pid} {
		if m := re.FindStringSubmatch(line); m != nil {
			*v, _ = strconv.Atoi(m[1])
		}
	}
	return w, ""
}

// checkPlace fails unless key, entering at nd, reached its owner
// (shard.Place) and echoes.
func (c *testCluster) checkPlace(t *testing.T, nd *clusterNode, key string) {
	t.Helper()
	node, worker := shard.Place([]byte(key), len(c.nodes), c.workers)
	w, errLine := dialKey(t, nd, key)
	if w == nil {
		t.Fatalf("key %q via node %d: %s", key, nd.index, errLine)
	}
	if w.node != node || w.shard != worker || w.viaNode != nd.index {
		t.Fatalf("key %q via node %d: served by node %d worker %d (via node %d), want node %d worker %d", key, nd.index, w.node, w.shard, w.viaNode, node, worker)
	}
	_ = w.conn.SetDeadline(time.Now().Add(soon))
	msg := "hello " + key + "\n"
	if _, err := w.conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if got, err := w.r.ReadString('\n'); err != nil || got != msg {
		t.Fatalf("key %q via node %d: echo %q, %v", key, nd.index, got, err)
	}
	w.conn.Close()
}

// keyOn returns a key shard.Place puts on node (and, if worker >= 0, on
// that worker), the nth such.
func (c *testCluster) keyOn(node, worker, nth int) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("key-%d", i)
		n, w := shard.Place([]byte(k), len(c.nodes), c.workers)
		if n == node && (worker < 0 || w == worker) {
			if nth == 0 {
				return k
			}
			nth--
		}
	}
}

// TestClusterRouting: in a three-node cluster, every key reaches its one
// owner, the worker shard.Place names on the node it names, whichever node
// and worker accepted it, in both forwarding modes.
func TestClusterRouting(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode string) {
		c := startCluster(t, 3, 2, "--forward", mode)
		for _, nd := range c.nodes {
			for node := 0; node < 3; node++ {
				for worker := 0; worker < 2; worker++ {
					for nth := 0; nth < 2; nth++ {
						c.checkPlace(t, nd, c.keyOn(node, worker, nth))
					}
				}
			}
		}
	})
}

// TestClusterChat: members of one room entering through different nodes
// are in the same room, on its owner, and hear each other.
func TestClusterChat(t *testing.T) {
	c := startCluster(t, 3, 2, "--handler", "chat")
	room := c.keyOn(2, -1, 0)
	var members []*bufio.ReadWriter
	for _, nd := range c.nodes {
		conn, err := net.DialTimeout("tcp", nd.addr, soon)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(soon))
		fmt.Fprintf(conn, "%s\n", room)
		rw := bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn))
		line, err := rw.ReadString('\n')
		want := fmt.Sprintf("members=%d", len(members)+1)
		if err != nil || !strings.HasPrefix(line, "joined room=") || !strings.Contains(line, want) {
			t.Fatalf("join via node %d: %q, %v; want %s", nd.index, line, err, want)
		}
		members = append(members, rw)
	}
	for i, m := range members {
		msg := fmt.Sprintf("from member %d\n", i)
		m.WriteString(msg)
		m.Flush()
		for j, o := range members {
			if j == i {
				continue
			}
			if got, err := o.ReadString('\n'); err != nil || got != msg {
				t.Fatalf("member %d (node %d) heard %q, %v; want %q", j, j, got, err, msg)
			}
		}
	}
}

// TestClusterNodeDown: the keys of a node that is down get "-ERR node N
// unavailable" after --owner-wait, from every other node; the other keys
// are served as before; when it comes back, it serves its keys again.
// The metrics follow the links.
func TestClusterNodeDown(t *testing.T) {
	c := startCluster(t, 3, 2, "--owner-wait", "300ms", "--admin", "127.0.0.1:0")
	admin0 := c.nodes[0].adminAddr(t)
	linkUp := func(m scrape, w, node int) float64 {
		return m.shardVal(t, "subordinate_node_link_up", w, "node", strconv.Itoa(node))
	}
	m := getMetrics(t, admin0)
	for w := 0; w < 2; w++ {
		if linkUp(m, w, 1) != 1 || linkUp(m, w, 2) != 1 {
			t.Fatalf("node 0 worker %d: links to nodes 1 and 2 not up in the metrics", w)
		}
	}
	checkStatusLinks(t, admin0, "2/2 up")
	down := c.nodes[2]
	down.Signal(syscall.SIGKILL)
	down.WaitExit(soon)
	for _, nd := range c.nodes[:2] {
		// The links to node 2 go down with it.
		for w := 0; w < c.workers; w++ {
			nd.WaitLog(soon, 1, func(l proctest.Line) bool {
				return (l.Msg() == "node link down" || l.Msg() == "cannot link to node") && fmt.Sprint(l["shard"]) == strconv.Itoa(w) && fmt.Sprint(l["peer"]) == "2"
			})
		}
	}
	for _, nd := range c.nodes[:2] {
		for worker := 0; worker < 2; worker++ {
			key := c.keyOn(2, worker, 0)
			if w, errLine := dialKey(t, nd, key); w != nil || errLine != "-ERR node 2 unavailable" {
				t.Fatalf("key %q of the dead node 2 via node %d: %v %q, want -ERR node 2 unavailable", key, nd.index, w, errLine)
			}
			for node := 0; node < 2; node++ {
				c.checkPlace(t, nd, c.keyOn(node, worker, 0))
			}
		}
	}
	m = getMetrics(t, admin0)
	var forwarded, refused float64
	for w := 0; w < 2; w++ {
		if linkUp(m, w, 1) != 1 || linkUp(m, w, 2) != 0 {
			t.Fatalf("node 0 worker %d, node 2 down: link up to node 1 %v, to node 2 %v; want 1 and 0", w, linkUp(m, w, 1), linkUp(m, w, 2))
		}
		forwarded += m.shardVal(t, "subordinate_node_forwarded_total", w)
		refused += m.shardVal(t, "subordinate_refused_total", w, "reason", "owner_unavailable")
	}
	checkStatusLinks(t, admin0, "1/2 up")
	// Via node 0: two keys of node 2, refused, and two of node 1.
	if forwarded != 4 || refused != 2 {
		t.Fatalf("node 0 relayed %v connections to other nodes and refused %v for an unavailable owner; want 4 and 2", forwarded, refused)
	}
	c.restart(t, down, 2)
	for _, nd := range c.nodes {
		for worker := 0; worker < 2; worker++ {
			c.checkPlace(t, nd, c.keyOn(2, worker, 1))
		}
	}
	m = getMetrics(t, c.nodes[2].adminAddr(t))
	var received float64
	for w := 0; w < 2; w++ {
		received += m.shardVal(t, "subordinate_node_received_total", w)
	}
	if received != 4 { // one per worker from each of nodes 0 and 1
		t.Fatalf("the restarted node 2 received %v connections from other nodes, want 4", received)
	}
}

// TestClusterForeignCA: a node whose certificate does not come from the
// cluster's CA is refused: the others log it, and its keys are
// unavailable from them; theirs are served.
func TestClusterForeignCA(t *testing.T) {
	c := startCluster(t, 2, 1, "--owner-wait", "300ms")
	c.nodes[1].Signal(syscall.SIGTERM)
	c.nodes[1].WaitExit(soon)
	cert, key := proctest.NodeCert(t, nodeHost(0), nodeHost(1)) // another CA
	intruder := c.start(t, 1, cert, key, cert, "--owner-wait", "300ms")
	// Node 0 dials node 1: its TLS client refuses node 1's certificate.
	c.nodes[0].WaitLog(soon, 1, func(l proctest.Line) bool {
		return l.Is("cannot link to node", "peer", 1) && strings.Contains(fmt.Sprint(l["err"]), "certificate")
	})
	intruder.WaitLog(soon, 1, func(l proctest.Line) bool { return strings.HasPrefix(l.Msg(), "node link refused") })
	key1 := c.keyOn(1, 0, 0)
	if w, errLine := dialKey(t, c.nodes[0], key1); w != nil || errLine != "-ERR node 1 unavailable" {
		t.Fatalf("key %q of the refused node via node 0: %v %q", key1, w, errLine)
	}
	c.checkPlace(t, c.nodes[0], c.keyOn(0, 0, 0))
	ups := 0
	for _, l := range c.nodes[0].Logs() {
		if l.Is("node link up", "peer", 1) {
			ups++
		}
	}
	if ups != 1 { // the link to the first node 1, and none since
		t.Fatalf("node 0 logged %d links up to node 1, want 1: it linked with the intruder", ups)
	}
}

// TestClusterTLS: a TLS connection whose key is another node's is
// terminated by the node that accepted it and reaches its owner there
// decrypted, with its TLS state: a key read inside TLS (frame), spliced or
// relayed to the worker that stands for its owner, and one read from the
// ClientHello (sni), handed to that worker before its handshake.
func TestClusterTLS(t *testing.T) {
	for _, tc := range []struct{ keyFrom, forwardTLS string }{{"frame", "splice"}, {"frame", "relay"}, {"sni", "auto"}} {
		keyFrom := tc.keyFrom
		t.Run(keyFrom+"/"+tc.forwardTLS, func(t *testing.T) {
			t.Parallel()
			cert, key, pool := proctest.SelfSigned(t, "*.example")
			c := &testCluster{workers: 2, scheme: "tls"}
			ncert, nkey := proctest.NodeCert(t, nodeHost(0), nodeHost(1))
			for i := 0; i < 2; i++ {
				c.list = append(c.list, net.JoinHostPort(nodeHost(i), strconv.Itoa(freePorts(t, nodeHost(i), 2))))
			}
			for i := 0; i < 2; i++ {
				c.nodes = append(c.nodes, c.start(t, i, ncert, nkey, ncert, "--key-from", keyFrom, "--forward-tls", tc.forwardTLS, "--cert", cert, "--key", key))
			}
			for _, nd := range c.nodes {
				c.waitLinks(t, nd, 1)
			}
			for n := 0; n < 8; n++ {
				name := fmt.Sprintf("r%d.example", n)
				node, worker := shard.Place([]byte(name), 2, 2)
				for _, nd := range c.nodes {
					conn, err := tls.Dial("tcp", nd.addr, &tls.Config{ServerName: name, RootCAs: pool})
					if err != nil {
						t.Fatal(err)
					}
					_ = conn.SetDeadline(time.Now().Add(soon))
					if keyFrom == "frame" {
						fmt.Fprintf(conn, "%s\n", name)
					}
					line, err := bufio.NewReader(conn).ReadString('\n')
					conn.Close()
					want := fmt.Sprintf("node=%d via_node=%d", node, nd.index)
					if err != nil || !strings.HasPrefix(line, fmt.Sprintf("shard=%d ", worker)) || !strings.Contains(line, want) ||
						!strings.Contains(line, "tls=TLS 1.3 sni=\""+name+"\"") {
						t.Fatalf("%s via node %d: %q, %v; want shard=%d, %s and the TLS state", name, nd.index, line, err, worker, want)
					}
				}
			}
		})
	}
}

// TestClusterBoundedMemory: a client that writes to an echoing owner on
// another node and never reads what comes back fills every buffer on the
// way, each bounded (the socket buffers, the relays', the link's smux
// windows, the owner's stream), and then the client's writes stop making
// progress: the server has not taken 256 MiB, and no worker of either
// node holds much. (A write that makes no progress for stall is taken as
// the stop; on a machine too slow for that, the test still checks the
// memory.)
func TestClusterBoundedMemory(t *testing.T) {
	const total = 256 << 20
	c := startCluster(t, 2, 1, "--handler", "echo", "--admin", "127.0.0.1:0")
	key := c.keyOn(1, 0, 0)
	conn, err := net.DialTimeout("tcp", c.nodes[0].addr, soon)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s\n", key)
	const stall = 2 * time.Second
	chunk := make([]byte, 64<<10)
	sent := 0
	for sent < total {
		_ = conn.SetWriteDeadline(time.Now().Add(stall))
		n, err := conn.Write(chunk)
		sent += n
		if err != nil {
			break
		}
	}
	if sent >= total {
		t.Fatalf("the server took all of %d MiB from a client that reads nothing", total>>20)
	}
	t.Logf("a client that reads nothing stopped making progress after %.1f MiB", float64(sent)/(1<<20))
	for _, nd := range c.nodes {
		m := getMetrics(t, nd.adminAddr(t))
		if heap := m.shardVal(t, "subordinate_worker_heap_bytes", 0); heap > 64<<20 {
			t.Errorf("node %d's worker holds %.0f MiB of heap", nd.index, heap/(1<<20))
		}
	}
}

// TestClusterUpgrade: a node upgraded with SIGUSR2 hands its links to its
// new workers, whether it dials its peer (node 0) or is dialled (node 1):
// connections for its keys entering another node reach a new worker, and
// none is refused, while one open across the upgrade finishes on the old
// worker, which keeps the old master up until it closes.
func TestClusterUpgrade(t *testing.T) {
	for _, up := range []int{0, 1} {
		t.Run(fmt.Sprintf("node %d", up), func(t *testing.T) {
			t.Parallel()
			bin := filepath.Join(t.TempDir(), "subordinate")
			copyBinary(t, bin)
			c := startClusterBins(t, 2, 1, map[int]string{up: bin}, "--drain-timeout", "60s")
			nd, other := c.nodes[up], c.nodes[1-up]
			oldMaster, oldWorkers := nd.Pid, workersOf(nd.Proc, nd.Pid)
			held, errLine := dialKey(t, other, c.keyOn(up, 0, 0))
			if held == nil || !containsInt(oldWorkers, held.pid) {
				t.Fatalf("before the upgrade, a key of node %d: %+v %q; want an old worker %v", up, held, errLine, oldWorkers)
			}
			nd.Signal(syscall.SIGUSR2)
			ready := nd.WaitLog(soon, 1, func(l proctest.Line) bool {
				return l.Is("upgrade: the new master is ready; this master drains its workers and exits", "pid", oldMaster)
			})
			newMaster := ready.Int("new_master_pid")
			t.Cleanup(func() {
				if proctest.Alive(newMaster) {
					syscall.Kill(newMaster, syscall.SIGKILL)
				}
			})
			newWorkers := workersOf(nd.Proc, newMaster)
			// New connections for node up's keys, entering the other
			// node, reach a new worker: at once if the new worker dialled,
			// after the old one's go-away if it is dialled.
			for n := 1; ; n++ {
				w, errLine := dialKey(t, other, c.keyOn(up, 0, n))
				if w == nil {
					t.Fatalf("during the upgrade, a key of node %d was refused: %s", up, errLine)
				}
				w.conn.Close()
				if containsInt(newWorkers, w.pid) {
					break
				}
				if !containsInt(oldWorkers, w.pid) {
					t.Fatalf("connection %d for node %d served by pid %d, not an old %v or new %v worker", n, up, w.pid, oldWorkers, newWorkers)
				}
				if n > 2000 {
					t.Fatalf("after %d connections, node %d's keys are still served by the old worker %v, not the new %v", n, up, oldWorkers, newWorkers)
				}
			}
			// The held connection goes on, on the old worker.
			_ = held.conn.SetDeadline(time.Now().Add(soon))
			fmt.Fprintf(held.conn, "across the upgrade\n")
			if line, err := held.r.ReadString('\n'); err != nil || line != "across the upgrade\n" {
				t.Fatalf("the connection held across the upgrade: %q, %v", line, err)
			}
			if !proctest.Alive(oldMaster) {
				t.Fatal("the old master left with a connection open")
			}
			held.conn.Close()
			waitGone(t, oldMaster, "the old master")
			c.checkPlace(t, other, c.keyOn(up, 0, 5000))
		})
	}
}

// checkStatusLinks checks that `subordinate status` shows node 0 of 3
// and, for each of its 2 workers, links (such as "2/2 up").
func checkStatusLinks(t *testing.T, admin, links string) {
	t.Helper()
	out, errs, code := runArgs("status", "--admin", admin)
	if code != 0 || !strings.Contains(out, "cluster  node 0 of 3") || strings.Count(out, links) != 2 {
		t.Fatalf("subordinate status: exit %d, stderr %q, want node 0 of 3 and two workers with %s:\n%s", code, errs, links, out)
	}
}

// TestClusterNodesFile: the node list from a file (--nodes-file, with a
// comment and a blank line) works as --nodes does.
func TestClusterNodesFile(t *testing.T) {
	t.Parallel()
	c := &testCluster{workers: 1}
	for i := 0; i < 2; i++ {
		c.list = append(c.list, net.JoinHostPort(nodeHost(i), strconv.Itoa(freePorts(t, nodeHost(i), 1))))
	}
	file := filepath.Join(t.TempDir(), "nodes")
	body := "# the cluster, node 0 first\n" + c.list[0] + "\n\n" + c.list[1] + "\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cert, key := proctest.NodeCert(t, nodeHost(0), nodeHost(1))
	for i := 0; i < 2; i++ {
		args := []string{
			"--listen", "tcp://" + net.JoinHostPort(nodeHost(i), "0"),
			"--nodes-file", file, "--node-index", strconv.Itoa(i),
			"--cluster-listen", "tls://" + c.list[i],
			"--cluster-cert", cert, "--cluster-key", key, "--cluster-ca", cert,
		}
		c.nodes = append(c.nodes, &clusterNode{master: serve(t, 1, args...), index: i, args: args})
	}
	c.checkLinked(t)
}

// TestClusterTemplate: the node list as a template and a count
// (--nodes 'HOST{i}:PORT' --cluster-size 2, as a StatefulSet's DNS names
// are), here loopback addresses 127.0.1.10 and 127.0.1.11 on one port.
func TestClusterTemplate(t *testing.T) {
	t.Parallel()
	hosts := []string{"127.0.1.10", "127.0.1.11"}
	port := 0
	for port == 0 {
		p := freePorts(t, hosts[0], 1)
		if l, err := net.Listen("tcp", net.JoinHostPort(hosts[1], strconv.Itoa(p))); err == nil {
			l.Close()
			port = p
		}
	}
	c := &testCluster{workers: 1}
	for _, h := range hosts {
		c.list = append(c.list, net.JoinHostPort(h, strconv.Itoa(port)))
	}
	tmpl := "127.0.1.1{i}:" + strconv.Itoa(port)
	cert, key := proctest.NodeCert(t, hosts...)
	for i, h := range hosts {
		args := []string{
			"--listen", "tcp://" + net.JoinHostPort(h, "0"),
			"--nodes", tmpl, "--cluster-size", "2", "--node-index", strconv.Itoa(i),
			"--cluster-listen", "tls://" + c.list[i],
			"--cluster-cert", cert, "--cluster-key", key, "--cluster-ca", cert,
		}
		c.nodes = append(c.nodes, &clusterNode{master: serve(t, 1, args...), index: i, args: args})
	}
	c.checkLinked(t)
}
