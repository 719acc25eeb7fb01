package handoff

import (
	"cmp"
	"encoding/binary"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Every datagram on a link starts with a header: its kind and a number.
// A hand-off (kindHandoff) carries the number its sender gave it, then
// the hand-off message, and one socket. An acknowledgement (kindAck) is
// the header alone, with the number of the hand-off it acknowledges,
// sent back on the same link once the receiver is done with that
// hand-off: it has opened the connection on its event loop (or refused
// it with an answer, or found it closed). Until then the sender keeps a
// duplicate of the socket and a copy of the message; if the receiver dies
// first, everything it had not acknowledged can be sent again to its
// successor (Unacked), and no client is closed without a word.
//
// The receiver acknowledges only after its event loop opened the
// connection, and before that it reads nothing from the socket; so a
// hand-off sent again was never seen by any handler, and one that was
// seen is never sent again.
const (
	headerSize  = 5
	kindHandoff = 1
	kindAck     = 2
)

// ackTimeout bounds how long Ack waits for room in the peer's socket.
const ackTimeout = time.Second

// Pending is a hand-off sent and not acknowledged: its message, and a
// duplicate of its socket, which whoever takes the Pending owns.
type Pending struct {
	Msg []byte
	FD  int
}

func appendHeader(dst []byte, kind byte, seq uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, kind), seq)
}

func parseHeader(b []byte) (kind byte, seq uint32, ok bool) {
	if len(b) < headerSize {
		return 0, 0, false
	}
	return b[0], binary.BigEndian.Uint32(b[1:headerSize]), true
}

// Ack tells the peer that its hand-off number seq is done with: the peer
// lets its copy go. It waits at most a second for room; an error means
// the peer is gone or not reading (it sends the hand-off again to this
// worker's successor, or closes its copy, at its end).
func (l *Link) Ack(seq uint32) error {
	var hdr [headerSize]byte
	return l.sendWait([][]byte{appendHeader(hdr[:0], kindAck, seq)}, nil, time.Now().Add(ackTimeout))
}

// TryAck is Ack without waiting: it returns ErrFull when the peer's
// socket has no room (the caller then acknowledges with Ack from a
// goroutine).
func (l *Link) TryAck(seq uint32) error {
	var hdr [headerSize]byte
	return l.sendNow([][]byte{appendHeader(hdr[:0], kindAck, seq)}, nil)
}

// acked forgets hand-off seq: the peer has it.
func (l *Link) acked(seq uint32) {
	l.mu.Lock()
	p, ok := l.pending[seq]
	delete(l.pending, seq)
	l.mu.Unlock()
	if ok {
		_ = unix.Close(p.FD)
	}
}

// Unacked ends the tracking of a link whose peer is gone (Receive
// returned an error: every acknowledgement it sent has been read) and
// returns the hand-offs it never acknowledged, in the order they were
// sent. The caller owns their descriptors. Sends on the link fail from
// now on.
func (l *Link) Unacked() []Pending {
	return l.takePending()
}

// PendingCount returns the number of hand-offs sent and not yet
// acknowledged.
func (l *Link) PendingCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

func (l *Link) takePending() []Pending {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = true
	seqs := make([]uint32, 0, len(l.pending))
	for seq := range l.pending {
		seqs = append(seqs, seq)
	}
	// Numbers wrap after 2^32 hand-offs; pending ones are few and recent.
	sortByAge(seqs, l.seq)
	out := make([]Pending, 0, len(seqs))
	for _, seq := range seqs {
		out = append(out, l.pending[seq])
	}
	clear(l.pending)
	return out
}

// sortByAge sorts hand-off numbers by age, given the last one sent: the
// oldest first, across a wrap of the counter.
func sortByAge(seqs []uint32, last uint32) {
	slices.SortFunc(seqs, func(a, b uint32) int { return cmp.Compare(last-b, last-a) })
}
