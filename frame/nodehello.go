package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// NodeHelloVersion is the version of the node link protocol this package
// speaks: a link between nodes of different versions is refused.
const NodeHelloVersion = 1

// NodeHelloSize is the length of a NodeHello on the wire.
const NodeHelloSize = 4 + 1 + 4 + 4 + 4 + 4 + 8

// nodeHelloMagic starts every NodeHello: a peer that is not a Subordinate
// node (or a client on the cluster port) is told apart at once.
var nodeHelloMagic = []byte("SUBN")

// ErrNotNodeHello is returned by ParseNodeHello for bytes that do not
// start with the magic: the peer is not a Subordinate node.
var ErrNotNodeHello = errors.New("frame: not a node hello")

// NodeHello is what each end of a link between two nodes sends first,
// inside mutual TLS (docs/PROTOCOL.md, "Node links"): who it is and the
// cluster it believes in. Two nodes link only if they agree on all of
// it (CheckNodeHello); any difference would give a key two owners.
type NodeHello struct {
	Version uint8
	// Index is the sender's node index.
	Index uint32
	// Size is the number of nodes the sender was given.
	Size uint32
	// Workers is the number of workers per node the sender runs.
	Workers uint32
	// Worker is the sender's worker index: links join the same worker
	// index of two nodes (docs/CLUSTER.md, "planes").
	Worker uint32
	// List is the xxh3 of the ordered node list the sender was given
	// (cluster.Members.ListHash).
	List uint64
}

// AppendNodeHello appends h's encoding to b.
func AppendNodeHello(b []byte, h *NodeHello) []byte {
	b = append(b, nodeHelloMagic...)
	b = append(b, h.Version)
	b = binary.BigEndian.AppendUint32(b, h.Index)
	b = binary.BigEndian.AppendUint32(b, h.Size)
	b = binary.BigEndian.AppendUint32(b, h.Workers)
	b = binary.BigEndian.AppendUint32(b, h.Worker)
	return binary.BigEndian.AppendUint64(b, h.List)
}

// ParseNodeHello decodes the NodeHello that b starts with (b must hold at
// least NodeHelloSize bytes; bytes that cannot start one are
// ErrNotNodeHello however few). It checks the framing only; CheckNodeHello
// checks the content against the receiver's view.
func ParseNodeHello(b []byte) (NodeHello, error) {
	if !bytes.HasPrefix(b, nodeHelloMagic[:min(len(b), len(nodeHelloMagic))]) {
		return NodeHello{}, ErrNotNodeHello
	}
	if len(b) < NodeHelloSize {
		return NodeHello{}, fmt.Errorf("frame: node hello of %d bytes, want %d", len(b), NodeHelloSize)
	}
	return NodeHello{
		Version: b[4],
		Index:   binary.BigEndian.Uint32(b[5:]),
		Size:    binary.BigEndian.Uint32(b[9:]),
		Workers: binary.BigEndian.Uint32(b[13:]),
		Worker:  binary.BigEndian.Uint32(b[17:]),
		List:    binary.BigEndian.Uint64(b[21:]),
	}, nil
}

// CheckNodeHello checks the hello got from the node a link was made with
// (want: its index in the receiver's list, or -1 when the receiver
// accepted the link and learns the index from the hello) against the
// receiver's own, mine. The error says what differs, for the operator's
// log line.
func CheckNodeHello(got, mine NodeHello, want int) error {
	switch {
	case got.Version != mine.Version:
		return fmt.Errorf("node %d speaks node protocol version %d, this node %d", got.Index, got.Version, mine.Version)
	case got.Size != mine.Size:
		return fmt.Errorf("node %d has a cluster of %d nodes, this node %d", got.Index, got.Size, mine.Size)
	case got.List != mine.List:
		return fmt.Errorf("node %d was given another node list (hash %016x, this node %016x)", got.Index, got.List, mine.List)
	case got.Workers != mine.Workers:
		return fmt.Errorf("node %d runs %d workers, this node %d: every node must run the same number", got.Index, got.Workers, mine.Workers)
	case got.Worker != mine.Worker:
		return fmt.Errorf("node %d's end is its worker %d, this end worker %d: links join the same worker of two nodes", got.Index, got.Worker, mine.Worker)
	case got.Index >= mine.Size:
		return fmt.Errorf("node index %d is not below the cluster size %d", got.Index, mine.Size)
	case got.Index == mine.Index:
		return fmt.Errorf("the peer says it is node %d, which is this node", got.Index)
	case want >= 0 && got.Index != uint32(want):
		return fmt.Errorf("the node at node %d's address says it is node %d", want, got.Index)
	}
	return nil
}
