package server

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"testing"
)

// BenchmarkTLSEcho measures a 1 KiB ping-pong over established TLS 1.3
// connections to an in-process shard that owns their keys (served on the
// loop: tls_loop.go); the clients share the process, so use it for
// profiles and for comparing runs of one machine:
//
//	go test -run '^$' -bench TLSEcho -cpuprofile cpu.out ./server/
func BenchmarkTLSEcho(b *testing.B) {
	hs := newHarness(b, ForwardRelay, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	})
	hs.h[0].open = func(*Conn) {} // no info line
	hs.enableTLS()
	hs.startBoth()
	defer hs.stopAll()
	msg := make([]byte, 1024)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		tc, err := tls.DialWithDialer(&net.Dialer{Timeout: bound}, "tcp", hs.ownTLS[0], &tls.Config{RootCAs: hs.roots, ServerName: "127.0.0.1"})
		if err != nil {
			b.Error(err)
			return
		}
		defer tc.Close()
		if _, err := tc.Write([]byte(keyFor(0, "bench", 0) + "\n")); err != nil {
			b.Error(err)
			return
		}
		buf := make([]byte, 1024)
		for pb.Next() {
			if _, err := tc.Write(msg); err != nil {
				b.Error(err)
				return
			}
			if _, err := io.ReadFull(tc, buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
