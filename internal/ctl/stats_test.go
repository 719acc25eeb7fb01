package ctl

import (
	"encoding/json"
	"testing"
)

// TestStatsRoundTrip: a stats request and its answer travel with their
// number, and the snapshot arrives as the bytes the worker encoded.
func TestStatsRoundTrip(t *testing.T) {
	master, worker := pair(t)
	if err := master.Send(&Message{Type: TypeStats, Stats: &Stats{ID: 7}}); err != nil {
		t.Fatal(err)
	}
	m, err := worker.Receive()
	if err != nil || m.Type != TypeStats || m.Stats == nil || m.Stats.ID != 7 || len(m.Stats.Snapshot) != 0 {
		t.Fatalf("request: %+v, %v", m, err)
	}
	snap := json.RawMessage(`{"accepted":3}`)
	if err := worker.Send(&Message{Type: TypeStats, Stats: &Stats{ID: 7, Snapshot: snap}}); err != nil {
		t.Fatal(err)
	}
	m, err = master.Receive()
	if err != nil || m.Type != TypeStats || m.Stats == nil || m.Stats.ID != 7 || string(m.Stats.Snapshot) != string(snap) {
		t.Fatalf("answer: %+v, %v", m, err)
	}
}
