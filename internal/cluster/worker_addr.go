package cluster

import (
	"fmt"
	"net"
	"strconv"
)

// WorkerAddr returns the cluster address of worker w of a node whose
// listed address is node: each worker listens on a port of its own, the
// node's port plus w ("10.0.0.2:7946" is worker 0, "10.0.0.2:7947"
// worker 1), because a link's TLS state cannot move between processes
// and a link is served by the worker that made it.
func WorkerAddr(node string, w int) (string, error) {
	host, port, err := net.SplitHostPort(node)
	if err != nil {
		return "", fmt.Errorf("cluster: node %q: %w", node, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p+w > 65535 || w < 0 {
		return "", fmt.Errorf("cluster: node %q: no port for worker %d", node, w)
	}
	if p == 0 {
		return net.JoinHostPort(host, "0"), nil
	}
	return net.JoinHostPort(host, strconv.Itoa(p+w)), nil
}
