// Package bench drives load against a Subordinate server, or any server
// that echoes what it receives after a key preamble, and measures it.
//
// Run opens Config.Conns closed-loop connections. Each one sends the
// preamble for its key once, then requests of Config.Size bytes, and checks
// that every byte comes back unchanged: ping-pong (one request in flight),
// pipelined (Config.Depth in flight) or connect-per-request (a new
// connection, with its own preamble, for each request). The Result holds the
// request rate, the throughput, latency percentiles from an HDR histogram
// and the errors counted by kind.
//
// Config.KeyFrom makes connections present their keys the way a server
// with `serve --key-from` expects instead of the preamble: as the TLS
// server name (sni), as the client's loopback source address (client-ip,
// KeyAddr), or in an HTTP/1.1 request head sent first (http-header,
// http-cookie, http-path, http-query), whose echo is read before the
// requests'.
//
//	res, err := bench.Run(ctx, bench.Config{Addr: "127.0.0.1:7000", Duration: 5 * time.Second})
//	if err != nil {
//		log.Fatal(err)
//	}
//	fmt.Println(res.RPS(), res.Percentile(99))
//
// Package bench/harness runs a real multi-worker Subordinate of a user's
// handler from inside a test binary and drives Run against it, for
// `go test -bench`. The command `subordinate bench` is Run with flags.
package bench
