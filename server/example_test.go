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
