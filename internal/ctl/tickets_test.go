package ctl

import (
	"bytes"
	"testing"
)

// TestTicketsRoundTrip: the ticket keys arrive byte for byte and in order
// in a tickets message, an init and an upgrade; a message without them
// has none.
func TestTicketsRoundTrip(t *testing.T) {
	master, worker := pair(t)
	keys := [][]byte{bytes.Repeat([]byte{3}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{1}, 32)}
	sent := []*Message{
		{Type: TypeTickets, Tickets: &Tickets{Keys: keys, Rotation: 5}},
		{Type: TypeInit, Protocol: ProtocolVersion, Init: &Init{Workers: 1, Tickets: &Tickets{Keys: keys, Rotation: 5}}},
		{Type: TypeUpgrade, Protocol: ProtocolVersion, Upgrade: &Upgrade{MasterPid: 1, Tickets: &Tickets{Keys: keys, Rotation: 5}}},
		{Type: TypeInit, Protocol: ProtocolVersion, Init: &Init{Workers: 1}},
	}
	for _, m := range sent {
		if err := master.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range sent {
		m, err := worker.Receive()
		if err != nil {
			t.Fatal(err)
		}
		var got *Tickets
		switch m.Type {
		case TypeTickets:
			got = m.Tickets
		case TypeInit:
			got = m.Init.Tickets
		case TypeUpgrade:
			got = m.Upgrade.Tickets
		}
		if i == 3 {
			if got != nil {
				t.Fatalf("an init without keys arrived with %+v", got)
			}
			continue
		}
		if got == nil || got.Rotation != 5 || len(got.Keys) != len(keys) {
			t.Fatalf("%s: tickets %+v", m.Type, got)
		}
		for k := range keys {
			if !bytes.Equal(got.Keys[k], keys[k]) {
				t.Fatalf("%s: key %d differs", m.Type, k)
			}
		}
	}
}
