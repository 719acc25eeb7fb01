package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/ctl"
)

// TestWorkerRefusesOtherProtocol: a worker whose master sends an init of
// another control protocol version (or none: a master from before
// versions) answers refused with its own version, closes the descriptors
// that came with the init, never builds a handler, and Serve returns an
// error wrapping ErrProtocolVersion (subordinate serve then exits 1).
func TestWorkerRefusesOtherProtocol(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Logger = nil
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range []int{0, ctl.ProtocolVersion + 1} {
		t.Run(strconv.Itoa(version), func(t *testing.T) {
			mc, child, err := ctl.Pair()
			if err != nil {
				t.Fatal(err)
			}
			defer mc.Close()
			fd, err := syscall.Dup(int(child.Fd()))
			child.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Setenv(workerEnv, strconv.Itoa(fd))

			// A descriptor sent with the init: the worker must close it.
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			local := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			factory := func(*Shard) (Handler, error) {
				t.Error("the worker built a handler for an init of another version")
				return nil, errors.New("no")
			}
			errc := make(chan error, 1)
			go func() { errc <- runWorker(local, factory) }()

			init := &ctl.Message{Type: ctl.TypeInit, Protocol: version, Init: &ctl.Init{
				Shard: 0, Workers: 1, Config: cfgJSON, Secret: []byte("s"),
				Listeners: []ctl.Listener{{Network: "tcp", Address: "127.0.0.1:1", URL: "tcp://127.0.0.1:1"}},
			}, FDs: []int{int(pw.Fd())}}
			if err := mc.Send(init); err != nil {
				t.Fatal(err)
			}
			pw.Close()
			_ = mc.SetReadDeadline(time.Now().Add(20 * time.Second))
			m, err := mc.Receive()
			if err != nil {
				t.Fatalf("no answer from the worker: %v", err)
			}
			if m.Type != ctl.TypeRefused || m.Protocol != ctl.ProtocolVersion || m.Refused == nil ||
				!strings.Contains(m.Refused.Reason, "version "+strconv.Itoa(version)) {
				_ = mc.Send(&ctl.Message{Type: ctl.TypeStop})
				t.Fatalf("the worker answered %+v (refused: %+v), want refused with version %d and the master's %d",
					m, m.Refused, ctl.ProtocolVersion, version)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, ErrProtocolVersion) {
					t.Fatalf("runWorker returned %v, want ErrProtocolVersion", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("runWorker did not return after refusing")
			}
			// Every copy of the pipe's write end is closed: the worker's
			// too. The read end sees EOF.
			_ = pr.SetReadDeadline(time.Now().Add(20 * time.Second))
			var b [1]byte
			if n, err := pr.Read(b[:]); n != 0 || err != io.EOF {
				t.Fatalf("read of the pipe: %d, %v: the worker kept the descriptor of the init", n, err)
			}
		})
	}
}
