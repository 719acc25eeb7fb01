package main

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/subordinate/subordinate/internal/proctest"
)

// manifestArgs returns the container args of deploy/kubernetes/
// statefulset.yaml: the items of the first "args:" list.
func manifestArgs(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "deploy", "kubernetes", "statefulset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var args []string
	in, indent := false, -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if !in {
			in = trimmed == "args:"
			continue
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		depth := len(line) - len(trimmed)
		if !strings.HasPrefix(trimmed, "- ") || (indent >= 0 && depth != indent) {
			break
		}
		indent = depth
		v := strings.TrimPrefix(trimmed, "- ")
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		args = append(args, v)
	}
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("statefulset.yaml: container args %q do not start with serve", args)
	}
	return args[1:]
}

// TestKubernetesTopology runs the cluster deploy/kubernetes describes on
// this machine: every node with the StatefulSet's own arguments (so a
// flag the manifest uses that serve does not take fails here), where
// only what a pod gets from Kubernetes is replaced: the pods' DNS names
// by loopback addresses (127.0.0.2, ...), the ordinal in the hostname by
// --node-index, the Secret's files by a test certificate. Every key
// reaches its owner from every node.
func TestKubernetesTopology(t *testing.T) {
	args := manifestArgs(t)
	value := func(name string) string {
		for i, a := range args {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
		}
		t.Fatalf("statefulset.yaml: no %s in %q", name, args)
		return ""
	}
	nodes, _ := strconv.Atoi(value("--cluster-size"))
	workers, _ := strconv.Atoi(value("--workers"))
	if nodes < 2 || workers < 1 {
		t.Fatalf("statefulset.yaml: --cluster-size %d, --workers %d", nodes, workers)
	}
	c := &testCluster{workers: workers}
	names := make([]string, nodes)
	for i := range names {
		names[i] = nodeHost(i)
		c.list = append(c.list, net.JoinHostPort(nodeHost(i), strconv.Itoa(freePorts(t, nodeHost(i), workers))))
	}
	cert, key := proctest.NodeCert(t, names...)
	for i := 0; i < nodes; i++ {
		local := map[string]string{
			"--listen":         "tcp://" + net.JoinHostPort(nodeHost(i), "0"),
			"--nodes":          strings.Join(c.list, ","),
			"--cluster-size":   strconv.Itoa(nodes),
			"--node-index":     strconv.Itoa(i),
			"--cluster-listen": "tls://" + c.list[i],
			"--cluster-cert":   cert,
			"--cluster-key":    key,
			"--cluster-ca":     cert,
			"--admin":          "127.0.0.1:0",
			"--workers":        "", // serve's helper gives it
		}
		var all []string
		for k := 0; k < len(args); k++ {
			a := args[k]
			v, replaced := local[a]
			if !replaced {
				all = append(all, a)
				continue
			}
			k++ // its value
			if v != "" {
				all = append(all, a, v)
			}
		}
		nd := &clusterNode{master: serve(t, workers, append(all, "--handler", "whoami")...), index: i, args: all}
		c.nodes = append(c.nodes, nd)
	}
	c.checkLinked(t)
	for _, nd := range c.nodes {
		if code, _ := httpGet(t, "http://"+nd.adminAddr(t)+"/readyz"); code != 200 {
			t.Fatalf("node %d: /readyz answered %d", nd.index, code)
		}
	}
}
