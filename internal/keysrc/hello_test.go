package keysrc

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"
)

// recorder is a net.Conn that records what a TLS client writes and fails
// its reads: the client's first flight is its ClientHello.
type recorder struct {
	net.Conn
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error)      { return r.buf.Write(b) }
func (r *recorder) Read([]byte) (int, error)         { return 0, errors.New("recording") }
func (r *recorder) Close() error                     { return nil }
func (r *recorder) SetDeadline(time.Time) error      { return nil }
func (r *recorder) SetReadDeadline(time.Time) error  { return nil }
func (r *recorder) SetWriteDeadline(time.Time) error { return nil }

// hello returns the ClientHello crypto/tls sends with cfg.
func hello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	r := &recorder{}
	_ = tls.Client(r, cfg).Handshake()
	if r.buf.Len() == 0 {
		t.Fatal("no ClientHello written")
	}
	return r.buf.Bytes()
}

// refragment cuts the handshake message of a one-record ClientHello into
// records of at most n bytes.
func refragment(rec []byte, n int) []byte {
	msg := rec[recordHeaderLen:]
	var out []byte
	for len(msg) > 0 {
		k := min(n, len(msg))
		out = append(out, recordHandshake, rec[1], rec[2], byte(k>>8), byte(k))
		out = append(out, msg[:k]...)
		msg = msg[k:]
	}
	return out
}

// feedSplit feeds b to h in pieces of n bytes (each call all so far).
func feedSplit(h *HelloReader, b []byte, n int) (bool, error) {
	for end := min(n, len(b)); ; end = min(end+n, len(b)) {
		done, err := h.Feed(b[:end])
		if done || err != nil || end == len(b) {
			return done, err
		}
	}
}

func TestHelloReader(t *testing.T) {
	configs := map[string]*tls.Config{
		"tls13":      {ServerName: "Chat.Example.COM", InsecureSkipVerify: true},
		"tls12":      {ServerName: "a.b", MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true},
		"alpn":       {ServerName: "x-1.example", NextProtos: []string{"h2", "http/1.1"}, InsecureSkipVerify: true},
		"x25519only": {ServerName: "short.example", CurvePreferences: []tls.CurveID{tls.X25519}, InsecureSkipVerify: true},
		"no sni":     {InsecureSkipVerify: true},
	}
	for name, cfg := range configs {
		want := bytes.ToLower([]byte(cfg.ServerName))
		if len(want) == 0 {
			want = nil
		}
		rec := hello(t, cfg)
		for _, in := range []struct {
			how string
			b   []byte
			n   int
		}{
			{"whole", rec, len(rec)},
			{"byte by byte", rec, 1},
			{"7 at a time", rec, 7},
			{"records of 100", refragment(rec, 100), 13},
			{"records of 1", refragment(rec, 1), 64},
			{"with bytes after", append(append([]byte(nil), rec...), "more"...), len(rec) + 4},
		} {
			var h HelloReader
			h.Init(0)
			done, err := feedSplit(&h, in.b, in.n)
			if !done || err != nil {
				t.Fatalf("%s, %s: done %v, err %v", name, in.how, done, err)
			}
			if got := h.ServerName(); !bytes.Equal(got, want) {
				t.Fatalf("%s, %s: server name %q, want %q", name, in.how, got, want)
			}
			if in.how == "whole" && h.End() != len(rec) {
				t.Fatalf("%s: End %d, want %d", name, h.End(), len(rec))
			}
		}
	}
}

func TestHelloReaderRefuses(t *testing.T) {
	rec := hello(t, &tls.Config{ServerName: "example.com", InsecureSkipVerify: true})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), rec...)) }
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"plaintext", []byte("GET / HTTP/1.1\r\n"), ErrNotTLS},
		{"one byte of plaintext", []byte("G"), ErrNotTLS},
		{"an alert record", []byte{21, 3, 3, 0, 2, 2, 40}, ErrNotTLS},
		{"empty record", []byte{22, 3, 1, 0, 0}, ErrMalformed},
		{"record too long", []byte{22, 3, 1, 0x40, 1}, ErrMalformed},
		{"record version", mut(func(b []byte) []byte { b[1] = 2; return b }), ErrMalformed},
		{"not a ClientHello", mut(func(b []byte) []byte { b[5] = 2; return b }), ErrMalformed},
		{"message too large", []byte{22, 3, 1, 0, 4, 1, 0x01, 0, 0}, ErrHelloTooLarge},
		{"message shorter than it says", mut(func(b []byte) []byte { b[8]--; return b }), ErrMalformed},
		{"another record inside", append(refragment(rec, 50)[:55], 23, 3, 3, 0, 1, 0), ErrMalformed},
		{"too many small records", refragment(append(rec[:5:5], append([]byte{1, 0, 0x3f, 0xfc}, make([]byte, 0x3ffc)...)...), 4), ErrHelloTooLarge},
	}
	for _, c := range cases {
		var h HelloReader
		done, err := feedSplit(&h, c.b, 3)
		if done || !errors.Is(err, c.want) {
			t.Errorf("%s: done %v, err %v; want %v", c.name, done, err, c.want)
		}
		if again, err2 := h.Feed(c.b); again || err2 != err {
			t.Errorf("%s: the error is not final: %v, %v", c.name, again, err2)
		}
	}
	// Cut short: not done, no error, whatever the cut.
	for i := 0; i < len(rec); i++ {
		var h HelloReader
		if done, err := h.Feed(rec[:i]); done || err != nil {
			t.Fatalf("cut at %d: %v, %v", i, done, err)
		}
	}
}

// TestHelloReaderAgreesWithCryptoTLS: for every hello crypto/tls's server
// reads, the server name is the one it sees (in lower case).
func TestHelloReaderAgreesWithCryptoTLS(t *testing.T) {
	for _, sn := range []string{"example.com", "UPPER.example", "x", "", "a-b_c.example"} {
		rec := hello(t, &tls.Config{ServerName: sn, InsecureSkipVerify: true})
		seen := make(chan string, 1)
		srv := tls.Server(&replay{in: bytes.NewReader(rec)}, &tls.Config{GetConfigForClient: func(ch *tls.ClientHelloInfo) (*tls.Config, error) {
			seen <- ch.ServerName
			return nil, errors.New("enough")
		}})
		_ = srv.Handshake()
		var h HelloReader
		if done, err := h.Feed(rec); !done || err != nil {
			t.Fatalf("%q: %v, %v", sn, done, err)
		}
		if got, want := string(h.ServerName()), string(bytes.ToLower([]byte(<-seen))); got != want {
			t.Fatalf("server name %q, crypto/tls saw %q", got, want)
		}
	}
}

// replay is a net.Conn that reads in and discards writes.
type replay struct {
	net.Conn
	in *bytes.Reader
}

func (r *replay) Read(b []byte) (int, error)       { return r.in.Read(b) }
func (r *replay) Write(b []byte) (int, error)      { return len(b), nil }
func (r *replay) Close() error                     { return nil }
func (r *replay) SetDeadline(time.Time) error      { return nil }
func (r *replay) SetReadDeadline(time.Time) error  { return nil }
func (r *replay) SetWriteDeadline(time.Time) error { return nil }

func TestHelloReaderAllocs(t *testing.T) {
	rec := hello(t, &tls.Config{ServerName: "chat.example", InsecureSkipVerify: true})
	var h HelloReader
	h.Feed(rec)
	if n := testing.AllocsPerRun(100, func() { h.Reset(); h.Feed(rec) }); n != 0 {
		t.Fatalf("%v allocations per ClientHello, want 0", n)
	}
}

func TestAlert(t *testing.T) {
	a := Alert(AlertUnrecognizedName)
	if !bytes.Equal(a, []byte{21, 3, 3, 0, 2, 2, 112}) {
		t.Fatalf("alert %v", a)
	}
}

func FuzzHelloReader(f *testing.F) {
	rec := hello(f, &tls.Config{ServerName: "fuzz.example", InsecureSkipVerify: true})
	f.Add(rec, uint8(1))
	f.Add(refragment(rec, 40), uint8(9))
	f.Add([]byte("GET / HTTP/1.1\r\n"), uint8(2))
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0}, uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, step uint8) {
		var whole, split HelloReader
		d1, e1 := whole.Feed(b)
		d2, e2 := feedSplit(&split, b, int(step)+1)
		if d1 != d2 || (e1 == nil) != (e2 == nil) {
			t.Fatalf("whole: %v, %v; in pieces of %d: %v, %v", d1, e1, int(step)+1, d2, e2)
		}
		if d1 {
			if !bytes.Equal(whole.ServerName(), split.ServerName()) || whole.End() != split.End() {
				t.Fatalf("whole: %q (%d); split: %q (%d)", whole.ServerName(), whole.End(), split.ServerName(), split.End())
			}
			if whole.End() > len(b) || whole.End() > DefaultMaxHello {
				t.Fatalf("End %d of %d bytes", whole.End(), len(b))
			}
		}
	})
}

func BenchmarkHelloReader(b *testing.B) {
	rec := hello(b, &tls.Config{ServerName: "chat.example", InsecureSkipVerify: true})
	var h HelloReader
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		h.Reset()
		if done, err := h.Feed(rec); !done || err != nil {
			b.Fatal(err)
		}
	}
}
