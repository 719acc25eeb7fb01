package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/ctl"
	"github.com/subordinate/subordinate/internal/proctest"
)

// stepRand yields keys that say which they are: the n-th Read fills its
// buffer with the byte n (from 1).
type stepRand struct{ n byte }

func (r *stepRand) Read(p []byte) (int, error) {
	r.n++
	for i := range p {
		p[i] = r.n
	}
	return len(p), nil
}

// failRand fails every Read.
type failRand struct{}

func (failRand) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

// ids names the keys of a ring by their first byte, newest first.
func ids(keys [][ticketKeySize]byte) string {
	s := ""
	for _, k := range keys {
		s += fmt.Sprint(k[0])
	}
	return s
}

// TestTicketRingRotation: one key at start; a rotation once each period
// has passed, never before; the new key first, two previous kept, the
// oldest dropped; a master late by many periods catches up with at most
// ticketKeysKept rotations, then keeps its rhythm from now.
func TestTicketRingRotation(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	p := time.Hour
	r, refused, err := newTicketRing(p, t0, nil, &stepRand{})
	if err != nil || refused != 0 {
		t.Fatal(err, refused)
	}
	steps := []struct {
		at      time.Duration
		rotated int
		keys    string
	}{
		{0, 0, "1"},
		{p - time.Nanosecond, 0, "1"},
		{p, 1, "21"},
		{p + time.Minute, 0, "21"},
		{2*p + time.Minute, 1, "321"},
		{3 * p, 1, "432"}, // key 1 dropped
		{3*p + 30*time.Minute, 0, "432"},
		{4 * p, 1, "543"},
		{6 * p, 2, "765"},   // two periods passed: two rotations
		{100 * p, 3, ":98"}, // late: at most ticketKeysKept (':' is byte 10)
		{101*p - time.Nanosecond, 0, ":98"},
		{101 * p, 1, ";:9"},
	}
	for _, s := range steps {
		n, err := r.advance(t0.Add(s.at))
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, k := range r.keys {
			got += string(rune('0' + k[0]))
		}
		if n != s.rotated || got != s.keys {
			t.Fatalf("at +%v: %d rotations, keys %s; want %d, %s", s.at, n, got, s.rotated, s.keys)
		}
	}
	if r.rotation != 10 {
		t.Fatalf("rotation counter %d, want 10", r.rotation)
	}

	// What the workers get: 32-byte keys, current first, a copy.
	w := r.wire()
	if len(w.Keys) != ticketKeysKept || w.Rotation != r.rotation {
		t.Fatalf("wire: %d keys, rotation %d", len(w.Keys), w.Rotation)
	}
	for i, k := range w.Keys {
		if len(k) != ticketKeySize || !bytes.Equal(k, r.keys[i][:]) {
			t.Fatalf("wire key %d: %d bytes, not the ring's", i, len(k))
		}
	}
	w.Keys[0][0] = 0
	if r.keys[0][0] == 0 {
		t.Fatal("the wire form shares memory with the ring")
	}
	if (*ticketRing)(nil).wire() != nil {
		t.Fatal("no ring (no tls:// listener): want no keys in the messages")
	}
}

// TestTicketRingRandom: keys from crypto/rand differ; a failing source
// keeps the keys and tries again a period later, not at once.
func TestTicketRingRandom(t *testing.T) {
	t0 := time.Now()
	r, _, err := newTicketRing(time.Minute, t0, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.advance(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r.keys[0] == r.keys[1] || r.keys[0] == [ticketKeySize]byte{} {
		t.Fatal("two random keys are equal, or zero")
	}
	before := r.keys
	r.rand = failRand{}
	now := t0.Add(2 * time.Minute)
	if n, err := r.advance(now); err == nil || n != 0 {
		t.Fatalf("advance with a failing source: %d, %v", n, err)
	}
	if ids(r.keys) != ids(before) || !r.next.Equal(now.Add(time.Minute)) {
		t.Fatalf("after a failure: keys changed, or next %v", r.next)
	}
	if _, _, err := newTicketRing(time.Minute, t0, nil, failRand{}); err == nil {
		t.Fatal("a master without a first key started")
	}
}

// TestTicketRingInherited: a new master of an upgrade goes on with the
// old master's keys in their order and its rotation count; keys of the
// wrong size and keys past ticketKeysKept are refused; with none usable
// it makes its own.
func TestTicketRingInherited(t *testing.T) {
	k := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }
	t0 := time.Now()
	r, refused, err := newTicketRing(time.Hour, t0, &ctl.Tickets{Keys: [][]byte{k(7, 32), k(6, 31), k(5, 32), k(4, 32), k(3, 32)}, Rotation: 9}, &stepRand{n: 100})
	if err != nil {
		t.Fatal(err)
	}
	if ids(r.keys) != "754" || refused != 2 || r.rotation != 9 {
		t.Fatalf("inherited keys %s, refused %d, rotation %d; want 754, 2, 9", ids(r.keys), refused, r.rotation)
	}
	if _, err := r.advance(t0.Add(time.Hour)); err != nil || ids(r.keys) != "10175" || r.rotation != 10 {
		t.Fatalf("rotation after an upgrade: %s, %d, %v", ids(r.keys), r.rotation, err)
	}
	r, refused, err = newTicketRing(time.Hour, t0, &ctl.Tickets{Keys: [][]byte{k(1, 16)}, Rotation: 4}, &stepRand{n: 100})
	if err != nil || ids(r.keys) != "101" || refused != 1 || r.rotation != 0 {
		t.Fatalf("no usable inherited key: %s, refused %d, rotation %d, %v", ids(r.keys), refused, r.rotation, err)
	}
}

// TestTicketKeysOf: what a worker accepts from the master.
func TestTicketKeysOf(t *testing.T) {
	good := [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)}
	keys, err := ticketKeysOf(&ctl.Tickets{Keys: good})
	if err != nil || len(keys) != 2 || keys[0][0] != 1 || keys[1][0] != 2 {
		t.Fatalf("good keys: %v, %v", keys, err)
	}
	for name, bad := range map[string][][]byte{"none": nil, "short": {good[0], good[1][:31]}, "long": {append(good[0], 0)}} {
		if _, err := ticketKeysOf(&ctl.Tickets{Keys: bad}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// handshakeOn makes one TLS connection of version to a server using
// store (a worker's), with the client's session cache, reads a byte (a
// TLS 1.3 ticket comes after the handshake) and reports whether the
// session was resumed.
func handshakeOn(t *testing.T, store *certStore, pool *x509.CertPool, cache tls.ClientSessionCache, version uint16) bool {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, store.server)
		if err := tc.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = tc.Write([]byte("x"))
		done <- err
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{
		RootCAs: pool, ServerName: "worker.test", ClientSessionCache: cache, MinVersion: version, MaxVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return c.ConnectionState().DidResume
}

// TestCertStoreTicketKeys: two workers' stores given the same keys
// resume each other's sessions (TLS 1.3 and 1.2), also after a
// certificate reload (the reloaded configuration keeps the keys) and
// after a rotation that keeps the old key for decryption; a session whose
// key was dropped, or made under other keys, makes a full handshake.
func TestCertStoreTicketKeys(t *testing.T) {
	certFile, keyFile, pool := proctest.SelfSigned(t, "worker.test")
	spec := TLSConfig{Certs: []CertFile{{Cert: certFile, Key: keyFile}}}
	newStore := func() *certStore {
		s, err := newCertStore(spec)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	key := func(b byte) [ticketKeySize]byte { return [ticketKeySize]byte(bytes.Repeat([]byte{b}, ticketKeySize)) }
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			a, b := newStore(), newStore()
			// Without master keys, each store has its own: no resumption
			// across them (what the keys fix).
			cache := tls.NewLRUClientSessionCache(8)
			handshakeOn(t, a, pool, cache, v)
			if handshakeOn(t, b, pool, cache, v) {
				t.Fatal("resumed across two stores without shared keys: the test proves nothing")
			}

			a.setTicketKeys([][ticketKeySize]byte{key(1)})
			b.setTicketKeys([][ticketKeySize]byte{key(1)})
			cache = tls.NewLRUClientSessionCache(8)
			if handshakeOn(t, a, pool, cache, v) {
				t.Fatal("the first handshake resumed")
			}
			if !handshakeOn(t, b, pool, cache, v) {
				t.Fatal("a session made on one worker did not resume on another with the same keys")
			}

			// Reloads of b keep the keys, those of a rotation between two
			// reloads included.
			for i, k := range []byte{1, 6} {
				a.setTicketKeys([][ticketKeySize]byte{key(k)})
				b.setTicketKeys([][ticketKeySize]byte{key(k)})
				if err := b.reload(); err != nil {
					t.Fatal(err)
				}
				cache = tls.NewLRUClientSessionCache(8)
				handshakeOn(t, a, pool, cache, v)
				if !handshakeOn(t, b, pool, cache, v) {
					t.Fatalf("no resumption after certificate reload %d", i+1)
				}
			}

			// A rotation keeps key 6 for decryption: a's old session
			// resumes on b.
			cache = tls.NewLRUClientSessionCache(8)
			handshakeOn(t, a, pool, cache, v) // a ticket under key 6
			b.setTicketKeys([][ticketKeySize]byte{key(7), key(6)})
			if !handshakeOn(t, b, pool, cache, v) {
				t.Fatal("a ticket of the previous key did not resume after a rotation")
			}

			// Key 6 dropped: a ticket under it makes a full handshake.
			cache = tls.NewLRUClientSessionCache(8)
			handshakeOn(t, a, pool, cache, v)
			b.setTicketKeys([][ticketKeySize]byte{key(9), key(8), key(7)})
			if handshakeOn(t, b, pool, cache, v) {
				t.Fatal("a ticket of a dropped key resumed")
			}
		})
	}
}
