package server_test

import (
	"fmt"
	"log"

	"github.com/subordinate/subordinate/server"
)

// rooms counts the members of each room a shard owns. Its methods run on
// the shard's event loop, one at a time: the map needs no lock.
type rooms struct {
	server.BaseHandler
	members map[string]int
}

func (h *rooms) OnOpen(c *server.Conn) {
	h.members[string(c.Key())]++
	fmt.Fprintf(c, "room %q has %d members on shard %d\n", c.Key(), h.members[string(c.Key())], c.Shard().Index())
}

func (h *rooms) OnClose(c *server.Conn, _ error) { h.members[string(c.Key())]-- }

// Example embeds Subordinate in a program with one call from main. The
// master re-executes the program as each worker; there Serve runs the
// shard with a handler from the factory.
func Example() {
	cfg := server.DefaultConfig()
	cfg.Listen = []string{"tcp://127.0.0.1:7000"}
	cfg.Workers = 4
	err := server.Serve(cfg, func(s *server.Shard) (server.Handler, error) {
		return &rooms{members: make(map[string]int)}, nil
	})
	if err != nil {
		log.Fatal(err)
	}
}

// ExampleShard_Run hands the result of background work back to the loop.
func ExampleShard_Run() {
	factory := func(s *server.Shard) (server.Handler, error) {
		h := &rooms{members: make(map[string]int)}
		go func() {
			// ... slow work off the loop, then:
			_ = s.Run(func() { h.members["announcements"] = 0 })
		}()
		return h, nil
	}
	_ = factory
}

// ExampleClusterConfig runs the program as node 1 of a three-node
// cluster: every node gets the same list, and each key is owned by one
// worker of one node (docs/CLUSTER.md). The handler is the same as on one
// machine; c.AcceptedByNode says which node the client reached.
func ExampleClusterConfig() {
	cfg := server.DefaultConfig()
	cfg.Listen = []string{"tcp://0.0.0.0:7000"}
	cfg.Workers = 2
	cfg.Cluster = server.ClusterConfig{
		Nodes:  "10.0.0.1:7946,10.0.0.2:7946,10.0.0.3:7946",
		Index:  "1", // or "from-hostname" in a Kubernetes StatefulSet
		Listen: "tls://0.0.0.0:7946",
		Cert:   "/etc/subordinate/cluster/tls.crt",
		Key:    "/etc/subordinate/cluster/tls.key",
		CA:     "/etc/subordinate/cluster/ca.crt",
	}
	err := server.Serve(cfg, func(s *server.Shard) (server.Handler, error) {
		log.Printf("shard %d of node %d (of %d)", s.Index(), s.Node(), s.Nodes())
		return &rooms{members: make(map[string]int)}, nil
	})
	if err != nil {
		log.Fatal(err)
	}
}
