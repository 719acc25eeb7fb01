// Package server runs Subordinate: a master process that owns the listening
// sockets and supervises one worker process per shard, and in each worker a
// single event loop that serves the connections whose key the shard owns.
//
// A program embeds it with one call from main:
//
//	func main() {
//		cfg := server.DefaultConfig()
//		if err := server.Serve(cfg, myFactory); err != nil {
//			log.Fatal(err)
//		}
//	}
//
// The master re-executes the same binary, with the same arguments, as each
// worker; in a worker, Serve runs the shard instead of the master.
package server
