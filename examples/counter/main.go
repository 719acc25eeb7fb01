// Command counter is a Subordinate server embedded in its own program: a
// set of named counters, one per key, each living in the one shard that
// owns its key, so it needs no lock and no shared store.
//
// A client sends the counter's name as the key line, then commands:
//
//	incr   adds one and answers the new value
//	get    answers the value
//
//	go run ./examples/counter --listen tcp://127.0.0.1:7100 --workers 4
//	printf 'visits\nincr\nincr\nget\n' | nc -N 127.0.0.1 7100   # or ncat; traditional nc: -q 1
//
// The master re-executes this program as each worker, with the same
// arguments, so main reaches server.Serve the same way in every process.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/subordinate/subordinate/server"
)

func main() {
	cfg := server.DefaultConfig()
	listen := flag.String("listen", "tcp://127.0.0.1:7100", "address to serve on")
	flag.IntVar(&cfg.Workers, "workers", cfg.Workers, "worker processes (shards)")
	flag.Parse()
	cfg.Listen = []string{*listen}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := server.Serve(cfg, newCounters); err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
}

// counters is one shard's handler: the counters whose keys it owns.
type counters struct {
	server.BaseHandler
	shard  *server.Shard
	values map[string]int
}

func newCounters(s *server.Shard) (server.Handler, error) {
	return &counters{shard: s, values: make(map[string]int)}, nil
}

func (h *counters) OnData(c *server.Conn) {
	for {
		buf, _ := c.Peek(-1)
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			if len(buf) > 64 {
				_, _ = c.Write([]byte("-ERR command too long\n"))
				_ = c.Close()
			}
			return
		}
		cmd := string(bytes.TrimSpace(buf[:i]))
		_, _ = c.Discard(i + 1)
		name := string(c.Key())
		switch cmd {
		case "incr":
			h.values[name]++
		case "get":
		default:
			_, _ = c.Write([]byte("-ERR unknown command\n"))
			continue
		}
		_, _ = c.Write([]byte(strconv.Itoa(h.values[name]) + " shard=" + strconv.Itoa(h.shard.Index()) + "\n"))
	}
}
