package mesh

import (
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// socketPair returns the two ends of a Unix stream socketpair as
// net.Conns, as the master makes them.
func socketPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		unix.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f) // dups fd
		_ = f.Close()
		if err != nil {
			t.Fatalf("FileConn: %v", err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// newMeshes makes n meshes linked pairwise by socketpairs. links[i][j] is
// the raw conn mesh i uses for peer j (to simulate a peer's death). They
// are closed at the end of the test.
func newMeshes(t testing.TB, n int, cfg MeshConfig, h StreamHandler) ([]*Mesh, [][]net.Conn) {
	t.Helper()
	ms := make([]*Mesh, n)
	links := make([][]net.Conn, n)
	for i := range ms {
		m, err := NewMesh(i, n, cfg, h, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = m
		links[i] = make([]net.Conn, n)
		t.Cleanup(func() { _ = m.Close() })
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			a, b := socketPair(t)
			links[i][j], links[j][i] = a, b
			if err := ms[i].SetLink(j, a); err != nil {
				t.Fatal(err)
			}
			if err := ms[j].SetLink(i, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ms, links
}

// checkLeaks records the goroutines and open FDs now and fails the test if,
// after the test and its other cleanups, they do not come back to that
// within a generous deadline. Call it first in a test.
func checkLeaks(t *testing.T) {
	t.Helper()
	g0, f0 := runtime.NumGoroutine(), countFDs()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			g, f := runtime.NumGoroutine(), countFDs()
			if g <= g0 && f <= f0 {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("leak: goroutines %d -> %d, fds %d -> %d\n%s", g0, g, f0, f, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// countFDs counts this process's open FDs (Linux; -1 elsewhere, which
// turns the FD check off).
func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// echoHandler echoes every stream back, then half-closes it.
func echoHandler(_ int, s *Stream) {
	defer s.Close()
	_ = s.SetReadDeadline(time.Time{})
	if _, err := io.Copy(s, s); err != nil {
		return
	}
	_ = s.CloseWrite()
	// wait for the opener to close, so the echo is not cut short
	var b [1]byte
	_, _ = s.Read(b[:])
}
