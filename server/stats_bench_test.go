package server

import "testing"

// BenchmarkCounting measures what counting costs one connection on the
// loop: accepted, forwarded (or opened) with its bytes already buffered,
// and one read and one write counted. Compare it with BenchmarkConnect's
// µs per connection: the counters are plain fields of the loop, so this
// is a few additions.
//
//	go test -run '^$' -bench Counting ./server/
func BenchmarkCounting(b *testing.B) {
	r := &routed{}
	c := &Conn{rt: r, pre: make([]byte, 16)}
	for b.Loop() {
		r.lstats.accepted++
		r.lstats.forwarded[howHandoff]++
		r.countOpen(c)
		r.lstats.bytesIn += 5
		r.lstats.bytesOut += 40
	}
	if r.lstats.accepted == 0 {
		b.Fatal("nothing counted")
	}
}

// BenchmarkCountRefusal measures counting one refused connection (off the
// loop too: an atomic add on a fixed array, after classifying the reason).
func BenchmarkCountRefusal(b *testing.B) {
	r := &routed{}
	for b.Loop() {
		r.countRefusal("key too long: longer than 1024 bytes")
	}
	if r.gstats.refused[refKeyTooLong].Load() == 0 {
		b.Fatal("nothing counted")
	}
}
