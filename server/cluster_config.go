package server

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/subordinate/subordinate/internal/cluster"
	"github.com/subordinate/subordinate/internal/nodelink"
)

// ClusterConfig makes a server one node of a cluster (docs/CLUSTER.md).
// Every node is given the same ordered node list, and node i owns the
// keys shard.Place puts on node i. The zero ClusterConfig is one machine,
// mapping keys as it always has, with no cluster listener.
type ClusterConfig struct {
	// Nodes is the node list: comma-separated HOST:PORT, node 0 first,
	// or one HOST:PORT template in which {i} stands for the node index
	// (with Size), such as "sub-{i}.sub.default.svc:7946". The port is
	// worker 0's; worker w of a node is at that port plus w. Default: ""
	// (no cluster).
	Nodes string `json:"nodes,omitempty"`
	// NodesFile names a file with one HOST:PORT per line instead of
	// Nodes (# starts a comment). Default: "".
	NodesFile string `json:"nodes_file,omitempty"`
	// Size is the node count of a Nodes template; with a list it must
	// agree with it. Default: 0 (the length of the list).
	Size int `json:"size,omitempty"`
	// Index is this node's index in the list: a number, or
	// "from-hostname" for the ordinal ending a Kubernetes StatefulSet
	// pod's hostname (sub-2 is node 2). Required in a cluster.
	Index string `json:"index,omitempty"`
	// Listen is where this node's workers accept the other nodes' links:
	// "tls://HOST:PORT" (or "HOST:PORT"; the links are always mutual
	// TLS). Worker w listens on PORT+w. Required in a cluster.
	Listen string `json:"listen,omitempty"`
	// Cert and Key are this node's PEM certificate and private key,
	// presented to the nodes it links with both as a server and as a
	// client; CA is the PEM certificate of the cluster's authority, which
	// every node's certificate must chain to (nodelink.TLSConfig). A
	// dialled node's certificate must name the host of its address in
	// the list. Required in a cluster.
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
	CA   string `json:"ca,omitempty"`
}

// Enabled reports whether the config names a cluster.
func (c *ClusterConfig) Enabled() bool { return c.Nodes != "" || c.NodesFile != "" }

// spec is the membership spec of the config.
func (c *ClusterConfig) spec() cluster.Spec {
	return cluster.Spec{Nodes: c.Nodes, File: c.NodesFile, Size: c.Size, Index: c.Index}
}

// validate checks the fields that need no file or hostname; resolve
// checks the rest.
func (c *ClusterConfig) validate(workers int) error {
	if !c.Enabled() {
		if c.Listen != "" || c.Cert != "" || c.Key != "" || c.CA != "" || c.Index != "" || c.Size > 1 {
			return errors.New("cluster settings (--cluster-listen, --cluster-cert, --node-index...) without a node list: give --nodes or --nodes-file")
		}
		return nil
	}
	switch {
	case c.Listen == "":
		return errors.New("cluster: --cluster-listen is required with --nodes")
	case c.Cert == "" || c.Key == "" || c.CA == "":
		return errors.New("cluster: --cluster-cert, --cluster-key and --cluster-ca are required with --nodes: the links between nodes are mutual TLS")
	}
	host, port, err := c.listenAddr()
	if err != nil {
		return err
	}
	if _, err := cluster.WorkerAddr(net.JoinHostPort(host, strconv.Itoa(port)), workers-1); err != nil {
		return fmt.Errorf("cluster: --cluster-listen %s: no port for each of %d workers", c.Listen, workers)
	}
	return nil
}

// listenAddr parses Listen: worker 0's host and port.
func (c *ClusterConfig) listenAddr() (string, int, error) {
	a := strings.TrimPrefix(c.Listen, "tls://")
	if strings.Contains(a, "://") {
		return "", 0, fmt.Errorf("cluster: --cluster-listen %q: want tls://HOST:PORT (the links are always TLS)", c.Listen)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", 0, fmt.Errorf("cluster: --cluster-listen %q: %w", c.Listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("cluster: --cluster-listen %q: bad port", c.Listen)
	}
	return host, p, nil
}

// workerListen is the listen URL of worker w's cluster listener.
func (c *ClusterConfig) workerListen(w int) (string, error) {
	host, port, err := c.listenAddr()
	if err != nil {
		return "", err
	}
	a, err := cluster.WorkerAddr(net.JoinHostPort(host, strconv.Itoa(port)), w)
	if err != nil {
		return "", err
	}
	return "tcp://" + a, nil
}

// resolve returns the membership the config names, reading the node file
// or the hostname, once, in the master (the workers get the list it
// resolved), and checks that the certificates load: a node that could
// link with nobody fails at start, not in its workers. Outside a cluster
// it returns a zero Members.
func (c *ClusterConfig) resolve() (cluster.Members, error) {
	if !c.Enabled() {
		return cluster.Members{}, nil
	}
	m, err := cluster.Resolve(c.spec(), nil)
	if err != nil {
		return cluster.Members{}, err
	}
	if _, err := nodelink.TLSConfig(c.Cert, c.Key, c.CA); err != nil {
		return cluster.Members{}, err
	}
	return m, nil
}
