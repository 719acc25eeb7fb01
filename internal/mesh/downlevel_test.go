package mesh

import (
	"context"
	"log/slog"
	"testing"
)

// levelRecorder is a slog.Handler that sends the level of each record
// with message msg.
type levelRecorder struct {
	msg    string
	levels chan slog.Level
}

func (h levelRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h levelRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.levels <- r.Level
	}
	return nil
}
func (h levelRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h levelRecorder) WithGroup(string) slog.Handler      { return h }

// A peer down is a warning while the worker serves and has no OnDown
// function; INFO once quiesced (its worker drains or stops), or when an
// OnDown function is there to decide.
func TestMeshPeerDownLevel(t *testing.T) {
	for _, tc := range []struct {
		name           string
		quiesce, onDwn bool
		want           slog.Level
	}{
		{"serving", false, false, slog.LevelWarn},
		{"quiesced", true, false, slog.LevelInfo},
		{"ondown", false, true, slog.LevelInfo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			rec := levelRecorder{msg: "mesh: peer down", levels: make(chan slog.Level, 1)}
			m0, err := NewMesh(0, 2, DefaultMeshConfig(), echoHandler, slog.New(rec))
			if err != nil {
				t.Fatal(err)
			}
			defer m0.Close()
			m1, err := NewMesh(1, 2, DefaultMeshConfig(), echoHandler, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if tc.quiesce {
				m0.Quiesce()
			}
			if tc.onDwn {
				m0.OnDown(func(int, error) {})
			}
			a, b := socketPair(t)
			if err := m0.SetLink(1, a); err != nil {
				t.Fatal(err)
			}
			if err := m1.SetLink(0, b); err != nil {
				t.Fatal(err)
			}
			_ = m1.Close() // the peer goes away
			if got := recv(t, "the peer down line", rec.levels); got != tc.want {
				t.Errorf("peer down logged at %v, want %v", got, tc.want)
			}
		})
	}
}
