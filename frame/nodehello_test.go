package frame

import (
	"bytes"
	"strings"
	"testing"
)

func TestNodeHelloRoundTrip(t *testing.T) {
	h := NodeHello{Version: NodeHelloVersion, Index: 2, Size: 3, Workers: 8, Worker: 5, List: 0x0123456789abcdef}
	b := AppendNodeHello([]byte("x"), &h)
	if len(b) != 1+NodeHelloSize {
		t.Fatalf("%d bytes, want %d", len(b), 1+NodeHelloSize)
	}
	want := "x" + "SUBN" + "\x01" + "\x00\x00\x00\x02" + "\x00\x00\x00\x03" + "\x00\x00\x00\x08" + "\x00\x00\x00\x05" + "\x01\x23\x45\x67\x89\xab\xcd\xef"
	if string(b) != want {
		t.Fatalf("encoding %x, want %x", b, want)
	}
	got, err := ParseNodeHello(b[1:])
	if err != nil || got != h {
		t.Fatalf("ParseNodeHello = %+v, %v; want %+v", got, err, h)
	}
	if _, err := ParseNodeHello(b[1 : len(b)-1]); err == nil {
		t.Error("a short hello parsed")
	}
	if _, err := ParseNodeHello([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != ErrNotNodeHello {
		t.Errorf("an HTTP request: %v, want ErrNotNodeHello", err)
	}
}

func TestCheckNodeHello(t *testing.T) {
	mine := NodeHello{Version: 1, Index: 0, Size: 3, Workers: 4, List: 7}
	peer := mine
	peer.Index = 2
	if err := CheckNodeHello(peer, mine, 2); err != nil {
		t.Fatalf("a matching peer: %v", err)
	}
	if err := CheckNodeHello(peer, mine, -1); err != nil {
		t.Fatalf("a matching peer that dialled in: %v", err)
	}
	for _, c := range []struct {
		edit func(*NodeHello)
		want int
		msg  string
	}{
		{func(h *NodeHello) { h.Version = 2 }, 2, "protocol version 2"},
		{func(h *NodeHello) { h.Size = 4 }, 2, "cluster of 4 nodes"},
		{func(h *NodeHello) { h.List = 8 }, 2, "another node list"},
		{func(h *NodeHello) { h.Workers = 2 }, 2, "runs 2 workers"},
		{func(h *NodeHello) { h.Worker = 1 }, 2, "is its worker 1, this end worker 0"},
		{func(h *NodeHello) { h.Index = 3 }, -1, "not below the cluster size"},
		{func(h *NodeHello) { h.Index = 0 }, -1, "which is this node"},
		{func(h *NodeHello) { h.Index = 1 }, 2, "says it is node 1"},
	} {
		h := peer
		c.edit(&h)
		if err := CheckNodeHello(h, mine, c.want); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: %v, want %q", h, err, c.msg)
		}
	}
}

// FuzzParseNodeHello: any bytes parse or fail cleanly, and what parses
// encodes back to the same bytes.
func FuzzParseNodeHello(f *testing.F) {
	f.Add(AppendNodeHello(nil, &NodeHello{Version: 1, Index: 1, Size: 2, Workers: 2, List: 1}))
	f.Add([]byte("SUBN"))
	f.Add([]byte("\x16\x03\x01\x00\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseNodeHello(b)
		if err != nil {
			return
		}
		if again := AppendNodeHello(nil, &h); !bytes.Equal(again, b[:NodeHelloSize]) {
			t.Fatalf("%x parsed to %+v, which encodes to %x", b, h, again)
		}
	})
}
