package cluster

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func host(name string) func() (string, error) {
	return func() (string, error) { return name, nil }
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "nodes")
	if err := os.WriteFile(file, []byte("# the cluster\n10.0.0.1:7946\n\n  10.0.0.2:7946  \n10.0.0.3:7946\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	three := []string{"10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"}
	for _, c := range []struct {
		name string
		spec Spec
		host string
		want Members
	}{
		{"none", Spec{}, "", Single},
		{"none, index 0", Spec{Index: "0"}, "", Single},
		{"list", Spec{Nodes: strings.Join(three, ","), Index: "1"}, "", Members{three, 1}},
		{"list with size", Spec{Nodes: strings.Join(three, ","), Size: 3, Index: "2"}, "", Members{three, 2}},
		{"file", Spec{File: file, Index: "0"}, "", Members{three, 0}},
		{"template", Spec{Nodes: "sub-{i}.sub.default.svc:7946", Size: 2, Index: "from-hostname"}, "sub-1",
			Members{[]string{"sub-0.sub.default.svc:7946", "sub-1.sub.default.svc:7946"}, 1}},
		{"IPv6", Spec{Nodes: "[::1]:7946,[::2]:7946", Index: "0"}, "", Members{[]string{"[::1]:7946", "[::2]:7946"}, 0}},
	} {
		got, err := Resolve(c.spec, host(c.host))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Resolve = %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	for _, c := range []struct {
		spec Spec
		host string
		msg  string
	}{
		{Spec{Size: 3}, "", "--cluster-size without --nodes"},
		{Spec{Index: "1"}, "", "--node-index without --nodes"},
		{Spec{Nodes: "a:1", File: "x"}, "", "exclusive"},
		{Spec{Nodes: "a:1,b:1"}, "", "--node-index is required"},
		{Spec{Nodes: "a:1,b:1", Index: "2"}, "", "want 0 to 1"},
		{Spec{Nodes: "a:1,b:1", Index: "-1"}, "", "want 0 to 1"},
		{Spec{Nodes: "a:1,b:1", Index: "x"}, "", "want 0 to 1"},
		{Spec{Nodes: "a:1,b:1", Size: 3, Index: "0"}, "", "--cluster-size 3, but 2 nodes"},
		{Spec{Nodes: "a:1,A:1", Index: "0"}, "", "nodes 0 and 1 are both"},
		{Spec{Nodes: "a:1,b", Index: "0"}, "", "want HOST:PORT"},
		{Spec{Nodes: "a:1,:7", Index: "0"}, "", "want HOST:PORT"},
		{Spec{Nodes: "a:1,b:70000", Index: "0"}, "", "bad port"},
		{Spec{Nodes: "a:1,,b:1", Index: "0"}, "", "want HOST:PORT"},
		{Spec{Nodes: "s-{i}:1", Index: "0"}, "", "needs --cluster-size"},
		{Spec{Nodes: "s-{i}:1", Size: MaxNodes + 1, Index: "0"}, "", "is over"},
		{Spec{Nodes: "s-{i}:1", Size: 2, Index: "from-hostname"}, "s-2", "is node 2, but the cluster has 2"},
		{Spec{Nodes: "s-{i}:1", Size: 2, Index: "from-hostname"}, "laptop", "does not end in -ORDINAL"},
		{Spec{File: "/nonexistent/nodes", Index: "0"}, "", "no such file"},
	} {
		_, err := Resolve(c.spec, host(c.host))
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Resolve(%+v) = %v; want an error with %q", c.spec, err, c.msg)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty")
	_ = os.WriteFile(empty, []byte("# nobody\n"), 0o600)
	if _, err := Resolve(Spec{File: empty, Index: "0"}, nil); err == nil || !strings.Contains(err.Error(), "lists no node") {
		t.Errorf("an empty file: %v", err)
	}
	failing := func() (string, error) { return "", errors.New("uname failed") }
	if _, err := Resolve(Spec{Nodes: "a:1,b:1", Index: "from-hostname"}, failing); err == nil || !strings.Contains(err.Error(), "uname failed") {
		t.Errorf("a hostname error: %v", err)
	}
}

func TestHostnameOrdinal(t *testing.T) {
	for h, want := range map[string]int{"sub-0": 0, "sub-2": 2, "my-app-17": 17, "sub-3.sub.default.svc.cluster.local": 3} {
		if got, err := HostnameOrdinal(h); err != nil || got != want {
			t.Errorf("HostnameOrdinal(%q) = %d, %v; want %d", h, got, err, want)
		}
	}
	for _, h := range []string{"sub", "sub-", "sub-x", "sub-01", "-", "", "sub-1x", "sub-1234567890", "a.sub-1"} {
		if got, err := HostnameOrdinal(h); err == nil {
			t.Errorf("HostnameOrdinal(%q) = %d; want an error", h, got)
		}
	}
}

func TestPeers(t *testing.T) {
	m := Members{Nodes: []string{"a:1", "b:1", "c:1"}, Self: 1}
	if got := m.Peers(); !reflect.DeepEqual(got, []int{0, 2}) || m.Size() != 3 {
		t.Errorf("Peers = %v, Size = %d", got, m.Size())
	}
	if got := Single.Peers(); len(got) != 0 {
		t.Errorf("Single.Peers = %v", got)
	}
}

func TestListHash(t *testing.T) {
	a := Members{Nodes: []string{"a:1", "b:1"}}
	if a.ListHash() != (Members{Nodes: []string{"A:1", "b:1"}, Self: 1}).ListHash() {
		t.Error("the list hash depends on case or on Self")
	}
	for _, other := range [][]string{{"b:1", "a:1"}, {"a:1"}, {"a:1", "b:1", "c:1"}, {"a:1b:1"}, {"a:1", "b:2"}} {
		if a.ListHash() == (Members{Nodes: other}).ListHash() {
			t.Errorf("%q and %q hash alike", a.Nodes, other)
		}
	}
}

// TestWorkerAddr: worker w of a node listens on the node's port plus w.
func TestWorkerAddr(t *testing.T) {
	for _, c := range []struct {
		node string
		w    int
		want string
	}{
		{"10.0.0.2:7946", 0, "10.0.0.2:7946"},
		{"10.0.0.2:7946", 3, "10.0.0.2:7949"},
		{"sub-1.sub.default.svc:7946", 1, "sub-1.sub.default.svc:7947"},
		{"[::1]:7000", 2, "[::1]:7002"},
		{"127.0.0.1:0", 5, "127.0.0.1:0"},
	} {
		got, err := WorkerAddr(c.node, c.w)
		if err != nil || got != c.want {
			t.Errorf("WorkerAddr(%q, %d) = %q, %v; want %q", c.node, c.w, got, err, c.want)
		}
	}
	for _, bad := range []string{"nohost", "h:65535"} {
		if _, err := WorkerAddr(bad, 1); err == nil {
			t.Errorf("WorkerAddr(%q, 1): no error", bad)
		}
	}
}
