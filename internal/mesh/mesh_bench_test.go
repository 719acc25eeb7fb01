package mesh

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// benchMeshes is newMeshes with a quiet logger.
func benchMeshes(b *testing.B, cfg MeshConfig, h StreamHandler) []*Mesh {
	b.Helper()
	quiet := slog.New(slog.DiscardHandler)
	ms := make([]*Mesh, 2)
	for i := range ms {
		m, err := NewMesh(i, 2, cfg, h, quiet)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = m.Close() })
		ms[i] = m
	}
	x, y := socketPair(b)
	if err := ms[0].SetLink(1, x); err != nil {
		b.Fatal(err)
	}
	if err := ms[1].SetLink(0, y); err != nil {
		b.Fatal(err)
	}
	return ms
}

// transfer writes total bytes to w in 32 KiB writes while a reader drains
// r into io.Discard, and returns the time until the reader is done.
func transfer(b *testing.B, w io.WriteCloser, done <-chan int64, total int) time.Duration {
	buf := make([]byte, 32<<10)
	start := time.Now()
	for sent := 0; sent < total; sent += len(buf) {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if cw, ok := w.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if n := <-done; n != int64(total) {
		b.Fatalf("received %d of %d bytes", n, total)
	}
	return time.Since(start)
}

// BenchmarkThroughput moves 8 MiB per iteration over one mesh stream and,
// in the same iteration, over a bare socketpair, and reports both rates and
// their ratio (mesh/raw), with the default config and two variations.
func BenchmarkThroughput(b *testing.B) {
	noBuf := DefaultMeshConfig()
	noBuf.ReadBufferSize = 0
	bigFrame := DefaultMeshConfig()
	bigFrame.MaxFrameSize = 65535
	b.Run("default", func(b *testing.B) { benchThroughput(b, DefaultMeshConfig()) })
	b.Run("unbuffered-link", func(b *testing.B) { benchThroughput(b, noBuf) })
	b.Run("frame-64k", func(b *testing.B) { benchThroughput(b, bigFrame) })
}

func benchThroughput(b *testing.B, cfg MeshConfig) {
	const total = 8 << 20
	recvd := make(chan int64, 1)
	ms := benchMeshes(b, cfg, func(_ int, s *Stream) {
		defer s.Close()
		_ = s.SetReadDeadline(time.Time{})
		buf := make([]byte, 32<<10)
		n, _ := io.CopyBuffer(io.Discard, struct{ io.Reader }{s}, buf)
		recvd <- n
	})
	rawW, rawR := socketPair(b)
	defer rawW.Close()
	defer rawR.Close()
	rawDone := make(chan int64, 1)
	var rawTime, meshTime time.Duration
	b.SetBytes(2 * total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		go func() {
			buf := make([]byte, 32<<10)
			var n int64
			for n < total {
				k, err := rawR.Read(buf)
				n += int64(k)
				if err != nil {
					break
				}
			}
			rawDone <- n
		}()
		rawTime += transfer(b, nopCloser{rawW}, rawDone, total)

		s, err := ms[0].Open(context.Background(), 1)
		if err != nil {
			b.Fatal(err)
		}
		meshTime += transfer(b, s, recvd, total)
		s.Close()
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * total / d.Seconds() / (1 << 20) }
	b.ReportMetric(mbps(rawTime), "raw-MiB/s")
	b.ReportMetric(mbps(meshTime), "mesh-MiB/s")
	b.ReportMetric(rawTime.Seconds()/meshTime.Seconds(), "mesh/raw")
}

type nopCloser struct{ net.Conn }

func (nopCloser) CloseWrite() error { return nil }

// BenchmarkOpenClose opens a stream, sends one byte, reads the echo and
// closes: one stream's life, round trip included.
func BenchmarkOpenClose(b *testing.B) {
	noBuf := DefaultMeshConfig()
	noBuf.ReadBufferSize = 0
	b.Run("default", func(b *testing.B) { benchOpenClose(b, DefaultMeshConfig()) })
	b.Run("unbuffered-link", func(b *testing.B) { benchOpenClose(b, noBuf) })
}

func benchOpenClose(b *testing.B, cfg MeshConfig) {
	ms := benchMeshes(b, cfg, func(_ int, s *Stream) {
		defer s.Close()
		var c [1]byte
		if _, err := io.ReadFull(s, c[:]); err == nil {
			_, _ = s.Write(c[:])
		}
	})
	ctx := context.Background()
	var c [1]byte
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := ms[0].Open(ctx, 1)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write(c[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(s, c[:]); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "streams/s")
}
