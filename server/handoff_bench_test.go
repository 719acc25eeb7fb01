package server

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"
)

// BenchmarkConnect measures one whole connection per operation on an
// in-process 2-shard server (real sockets, real loops, real SCM_RIGHTS):
// dial shard 0's own listener, send a key and a line, read the reply and
// the echo, close; 16 clients at a time. local: shard 0 owns the key; handoff and relay: shard
// 1 does, and shard 0 hands the socket off or relays it. cpu-µs/op is the
// process's CPU time (client and both shards) per connection, from
// getrusage: compare the rows of one run, not runs of different machines.
//
//	go test -run '^$' -bench Connect -count 6 ./server/
func BenchmarkConnect(b *testing.B) {
	for _, tc := range []struct {
		name, mode string
		owner      int
	}{
		{"local", ForwardHandoff, 0},
		{"handoff", ForwardHandoff, 1},
		{"relay", ForwardRelay, 1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			hs := newHarness(b, tc.mode, func(c *Config) {
				c.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
			})
			hs.startBoth()
			defer hs.stopAll()
			key := keyFor(tc.owner, "bench", 0)
			msg := []byte(key + "\nping\n")
			one := func(buf []byte) {
				c, err := net.DialTimeout("tcp", hs.own[0], bound)
				if err != nil {
					b.Fatal(err)
				}
				_ = c.SetDeadline(time.Now().Add(bound))
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				got := 0
				for !bytes.HasSuffix(buf[:got], []byte("\nping\n")) {
					n, err := c.Read(buf[got:])
					if err != nil {
						b.Fatalf("after %q: %v", buf[:got], err)
					}
					got += n
				}
				if !bytes.Contains(buf[:got], []byte("shard=1")) == (tc.owner == 1) {
					b.Fatalf("reply %q from the wrong shard", buf[:got])
				}
				_ = c.Close()
			}
			one(make([]byte, 4096)) // warm up the path
			var before syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			b.ResetTimer()
			b.SetParallelism(8) // clients in flight: the server is busy, as under load
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 4096)
				for pb.Next() {
					one(buf)
				}
			})
			b.StopTimer()
			var after syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
