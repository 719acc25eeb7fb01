package server

import (
	"bytes"
	"fmt"
	"testing"
)

// TestUnsent: the copy holds exactly the last pending bytes written,
// whatever the sizes of the writes and however gnet drained meanwhile.
func TestUnsent(t *testing.T) {
	var u unsent
	var all []byte
	for i := range 200 {
		p := bytes.Repeat([]byte{byte(i)}, 1+i%37)
		all = append(all, p...)
		pending := (i * 13) % (len(p) + 300) // gnet's buffer, drained at will
		if i%17 == 0 {
			pending = 0
		}
		u.wrote(p, pending)
		if pending == 0 {
			if len(u.buf)-u.off != 0 {
				t.Fatalf("write %d: %d bytes kept with nothing pending", i, len(u.buf)-u.off)
			}
			continue
		}
		if have := len(u.buf) - u.off; have < min(pending, len(p)) {
			t.Fatalf("write %d: %d bytes kept, want at least %d", i, have, min(pending, len(p)))
		}
	}
	u.wrote([]byte("abcdef"), 6)
	u.wrote([]byte("ghij"), 7)
	if got := string(u.take(5)); got != "fghij" {
		t.Fatalf("take(5) = %q, want %q", got, "fghij")
	}
	if got := u.take(0); got != nil {
		t.Fatalf("take(0) = %q", got)
	}
	// The copy stays bounded by what is pending, not by what was written.
	for i := range 10000 {
		u.wrote([]byte(fmt.Sprint(i)), 100)
	}
	if cap(u.buf) > 4096 {
		t.Errorf("buffer grew to %d bytes for 100 pending", cap(u.buf))
	}
}
