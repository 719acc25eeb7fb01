package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/zeebo/xxh3"
)

// MaxNodes is the largest cluster Resolve accepts. shard.Place allows
// more; a bound keeps a typo in --cluster-size from making millions of
// links.
const MaxNodes = 1024

// Members is a cluster's ordered node list and this node's place in it.
type Members struct {
	// Nodes are the nodes' cluster addresses (HOST:PORT), node i at
	// index i.
	Nodes []string
	// Self is this node's index in Nodes.
	Self int
}

// ListHash returns the xxh3 of the node list, the addresses in order,
// each followed by a newline, lowercased (host names are not case
// sensitive). Nodes exchange it when they link (frame.NodeHello): two
// nodes given different lists would not agree on who owns a key.
func (m Members) ListHash() uint64 {
	var b []byte
	for _, n := range m.Nodes {
		b = append(append(b, strings.ToLower(n)...), '\n')
	}
	return xxh3.Hash(b)
}

// Size returns the number of nodes.
func (m Members) Size() int { return len(m.Nodes) }

// Peers returns the indexes of the other nodes, in order.
func (m Members) Peers() []int {
	p := make([]int, 0, len(m.Nodes)-1)
	for i := range m.Nodes {
		if i != m.Self {
			p = append(p, i)
		}
	}
	return p
}

// Single is the membership of a server that is not in a cluster: one node,
// itself, which maps every key as a single machine does.
var Single = Members{Nodes: []string{""}, Self: 0}

// Spec is how a node is told of the cluster: serve's --nodes,
// --nodes-file, --cluster-size and --node-index.
type Spec struct {
	// Nodes is a comma-separated list of HOST:PORT, or one HOST:PORT
	// template in which {i} stands for the node index (with Size).
	Nodes string
	// File names a file with one HOST:PORT per line (blank lines and
	// lines starting with # are skipped). At most one of Nodes and File.
	File string
	// Size is the node count of a template; with a list or a file it may
	// be given too, and must then agree.
	Size int
	// Index is this node's index: a number, or "from-hostname" for the
	// ordinal that ends a StatefulSet pod's hostname (sub-2 is node 2).
	Index string
}

// Resolve turns spec into the membership, reading the file and the
// hostname if it says so. An empty spec is Single.
func Resolve(spec Spec, hostname func() (string, error)) (Members, error) {
	if spec.Nodes == "" && spec.File == "" {
		if spec.Size > 1 {
			return Members{}, errors.New("cluster: --cluster-size without --nodes or --nodes-file")
		}
		if spec.Index != "" && spec.Index != "0" {
			return Members{}, errors.New("cluster: --node-index without --nodes or --nodes-file")
		}
		return Single, nil
	}
	var (
		nodes []string
		err   error
	)
	switch {
	case spec.Nodes != "" && spec.File != "":
		return Members{}, errors.New("cluster: --nodes and --nodes-file are exclusive")
	case spec.File != "":
		nodes, err = readNodesFile(spec.File)
	case strings.Contains(spec.Nodes, "{i}"):
		nodes, err = expandTemplate(spec.Nodes, spec.Size)
	default:
		nodes = strings.Split(spec.Nodes, ",")
	}
	if err != nil {
		return Members{}, err
	}
	if spec.Size != 0 && spec.Size != len(nodes) {
		return Members{}, fmt.Errorf("cluster: --cluster-size %d, but %d nodes are listed", spec.Size, len(nodes))
	}
	if err := checkNodes(nodes); err != nil {
		return Members{}, err
	}
	self, err := parseIndex(spec.Index, len(nodes), hostname)
	if err != nil {
		return Members{}, err
	}
	return Members{Nodes: nodes, Self: self}, nil
}

// expandTemplate makes the list of a template with size nodes.
func expandTemplate(tmpl string, size int) ([]string, error) {
	if size < 1 {
		return nil, fmt.Errorf("cluster: the template %q needs --cluster-size", tmpl)
	}
	if size > MaxNodes {
		return nil, fmt.Errorf("cluster: --cluster-size %d is over %d", size, MaxNodes)
	}
	nodes := make([]string, size)
	for i := range nodes {
		nodes[i] = strings.ReplaceAll(tmpl, "{i}", strconv.Itoa(i))
	}
	return nodes, nil
}

// readNodesFile reads a node list file.
func readNodesFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	defer f.Close()
	var nodes []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if len(nodes) == MaxNodes {
			return nil, fmt.Errorf("cluster: %s: more than %d nodes", path, MaxNodes)
		}
		nodes = append(nodes, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", path, err)
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("cluster: %s lists no node", path)
	}
	return nodes, nil
}

// checkNodes checks that every node is a HOST:PORT and none is listed
// twice: two indexes for one node would give it two nodes' keys.
func checkNodes(nodes []string) error {
	if len(nodes) > MaxNodes {
		return fmt.Errorf("cluster: %d nodes, over %d", len(nodes), MaxNodes)
	}
	seen := make(map[string]int, len(nodes))
	for i, n := range nodes {
		host, port, err := net.SplitHostPort(n)
		if err != nil || host == "" {
			return fmt.Errorf("cluster: node %d %q: want HOST:PORT", i, n)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("cluster: node %d %q: bad port", i, n)
		}
		key := strings.ToLower(n)
		if j, dup := seen[key]; dup {
			return fmt.Errorf("cluster: nodes %d and %d are both %q", j, i, n)
		}
		seen[key] = i
	}
	return nil
}

// parseIndex reads --node-index for a cluster of n nodes.
func parseIndex(s string, n int, hostname func() (string, error)) (int, error) {
	if s == "" {
		return 0, errors.New("cluster: --node-index is required with --nodes (a number, or from-hostname)")
	}
	if s == "from-hostname" {
		if hostname == nil {
			hostname = os.Hostname
		}
		h, err := hostname()
		if err != nil {
			return 0, fmt.Errorf("cluster: --node-index from-hostname: %w", err)
		}
		i, err := HostnameOrdinal(h)
		if err != nil {
			return 0, err
		}
		if i >= n {
			return 0, fmt.Errorf("cluster: hostname %q is node %d, but the cluster has %d nodes", h, i, n)
		}
		return i, nil
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= n {
		return 0, fmt.Errorf("cluster: --node-index %q: want 0 to %d, or from-hostname", s, n-1)
	}
	return i, nil
}

// HostnameOrdinal returns the ordinal a StatefulSet gives a pod, the
// number after the last '-' of its hostname (only the first label of a
// fully qualified name counts): sub-2 and sub-2.sub.default.svc are 2.
func HostnameOrdinal(hostname string) (int, error) {
	label, _, _ := strings.Cut(hostname, ".")
	i := strings.LastIndexByte(label, '-')
	digits := label[i+1:]
	if i < 0 || digits == "" || len(digits) > 9 || strings.TrimLeft(digits, "0123456789") != "" ||
		(len(digits) > 1 && digits[0] == '0') {
		return 0, fmt.Errorf("cluster: hostname %q does not end in -ORDINAL (a StatefulSet pod's name)", hostname)
	}
	n, _ := strconv.Atoi(digits)
	return n, nil
}
