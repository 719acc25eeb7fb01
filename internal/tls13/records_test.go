package tls13

// The record layer against the test's own codec (helpers_test.go), a
// mirrored Conn, and crypto/tls: suites, sequence numbers, padding and
// limits, KeyUpdate, alerts, and transports that stop mid-record.

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestKeyScheduleVector pins the key and IV derivation (HKDF-Expand-Label,
// RFC 8446 section 7.3) to the vector of draft-ietf-tls-tls13-vectors
// (RFC 8448's), and the KeyUpdate derivation to the test's.
func TestKeyScheduleVector(t *testing.T) {
	secret, _ := hex.DecodeString("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
	wantKey, _ := hex.DecodeString("3fce516009c21727d0f2e4e86ee403bc")
	wantIV, _ := hex.DecodeString("5d313eb2671276ee13000b30")
	s, err := suiteOf(tls.TLS_AES_128_GCM_SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var k keys
	if err := k.set(s, secret, 7); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.iv[:], wantIV) {
		t.Errorf("iv %x, want %x", k.iv, wantIV)
	}
	want, _ := gcm(wantKey)
	var nonce [12]byte
	if err := k.nonce(&nonce); err != nil {
		t.Fatal(err)
	}
	// The nonce is the IV XOR the sequence number, left-padded.
	wantNonce := append([]byte(nil), wantIV...)
	wantNonce[11] ^= 7
	if !bytes.Equal(nonce[:], wantNonce) {
		t.Errorf("nonce %x, want %x", nonce, wantNonce)
	}
	if got, exp := k.aead.Seal(nil, nonce[:], []byte("x"), nil), want.Seal(nil, wantNonce, []byte("x"), nil); !bytes.Equal(got, exp) {
		t.Errorf("the AEAD's key is not %x", wantKey)
	}
	if err := k.update(s); err != nil {
		t.Fatal(err)
	}
	if next := hkdfExpandLabel(testSuiteOf(t, s.id).hash, secret, "traffic upd", 32); !bytes.Equal(k.secret, next) || k.seq != 0 {
		t.Errorf("after an update: secret %x seq %d, want %x seq 0", k.secret, k.seq, next)
	}
	// A secret of another size than the hash's is refused.
	if err := k.set(s, secret[:31], 0); err == nil {
		t.Error("a 31-byte secret for SHA-256 was taken")
	}
}

// TestSuites: each suite both ways against the test's codec and between
// a Conn and its mirror, with writes of zero bytes, of one byte, of
// exactly a record, and larger than several records.
func TestSuites(t *testing.T) {
	for _, id := range allSuites {
		t.Run(tls.CipherSuiteName(id), func(t *testing.T) {
			c, p := newPeer(t, id, 0, 0)
			p.send(p.data("hello "), p.w.seal(23, nil, 0), p.data("server"))
			expectRead(t, c, "hello server")
			sizes := []int{1, maxPlaintext - 1, maxPlaintext, maxPlaintext + 1, 3*maxPlaintext + 17}
			for _, n := range sizes {
				msg := pattern(n, n)
				if _, err := c.Write(nil); err != nil {
					t.Fatalf("zero-length write: %v", err)
				}
				if w, err := c.Write(msg); err != nil || w != n {
					t.Fatalf("write %d: %d, %v", n, w, err)
				}
				// Records of at most 2^14 bytes, every byte in order.
				var got []byte
				for len(got) < n {
					typ, content := p.recv()
					if typ != 23 || len(content) > maxPlaintext || len(content) == 0 {
						t.Fatalf("record type %d of %d bytes", typ, len(content))
					}
					got = append(got, content...)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("write of %d bytes: received other bytes", n)
				}
				// And the other way, one record per 2^14 bytes.
				var recs [][]byte
				for rest := msg; len(rest) > 0; rest = rest[min(len(rest), maxPlaintext):] {
					recs = append(recs, p.w.seal(23, rest[:min(len(rest), maxPlaintext)], 0))
				}
				go func() { _, _ = p.nc.Write(bytes.Join(recs, nil)) }()
				if got := readFull(t, c, n); !bytes.Equal(got, msg) {
					t.Fatalf("read of %d bytes: other bytes", n)
				}
			}
			if c.Buffered() != 0 {
				t.Fatalf("%d bytes buffered", c.Buffered())
			}

			server, client := mirroredPair(t, randomState(t, id, 0, 0))
			msg := pattern(5*maxPlaintext+3, 1)
			go func() { _, _ = client.Write(msg) }()
			if got := readFull(t, server, len(msg)); !bytes.Equal(got, msg) {
				t.Fatal("mirror to server: other bytes")
			}
			go func() { _, _ = server.Write(msg) }()
			if got := readFull(t, client, len(msg)); !bytes.Equal(got, msg) {
				t.Fatal("server to mirror: other bytes")
			}
		})
	}
}

// TestZeroLengthWriteSendsNothing: Write of nothing writes no record.
func TestZeroLengthWriteSendsNothing(t *testing.T) {
	tr := &scriptConn{}
	c, err := New(tr, randomState(t, tls.TLS_AES_128_GCM_SHA256, 0, 0), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Write([]byte{}); n != 0 || err != nil || tr.written.Len() != 0 {
		t.Fatalf("Write(empty): %d, %v, %d bytes sent", n, err, tr.written.Len())
	}
}

// pattern is n bytes that differ with seed.
func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed + i>>8)
	}
	return b
}

// TestSequenceNumbers: a State's sequence numbers are where each
// direction goes on; records with another fail to decrypt.
func TestSequenceNumbers(t *testing.T) {
	for _, seqs := range [][2]uint64{{0, 0}, {1, 5}, {1 << 20, 3}, {1<<40 + 17, 1<<33 + 9}} {
		t.Run(fmt.Sprint(seqs), func(t *testing.T) {
			c, p := newPeer(t, tls.TLS_AES_256_GCM_SHA384, seqs[0], seqs[1])
			p.send(p.data("one"), p.data("two"))
			expectRead(t, c, "onetwo")
			if _, err := c.Write([]byte("three")); err != nil {
				t.Fatal(err)
			}
			p.expectData("three")

			server, client := mirroredPair(t, randomState(t, tls.TLS_CHACHA20_POLY1305_SHA256, seqs[0], seqs[1]))
			go func() { _, _ = client.Write([]byte("up")) }()
			expectRead(t, server, "up")
			go func() { _, _ = server.Write([]byte("down")) }()
			expectRead(t, client, "down")
		})
	}
	for _, off := range []int64{1, -1} {
		t.Run(fmt.Sprint("off by ", off), func(t *testing.T) {
			c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 10, 0)
			p.w.seq = uint64(10 + off)
			p.send(p.data("x"))
			_, err := c.Read(make([]byte, 1))
			sentAlert(t, err, alertBadRecordMAC)
			p.expectAlert(alertLevelFatal, alertBadRecordMAC)
		})
	}
	t.Run("replay", func(t *testing.T) {
		c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
		rec := p.data("x")
		p.send(rec, rec)
		expectRead(t, c, "x")
		_, err := c.Read(make([]byte, 1))
		sentAlert(t, err, alertBadRecordMAC)
	})
}

// TestSequenceExhausted: no record goes out, or is taken, with the last
// sequence number (its nonce would repeat after the wrap).
func TestSequenceExhausted(t *testing.T) {
	c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, ^uint64(0), ^uint64(0)-1)
	if _, err := c.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	p.expectData("last")
	for range 2 {
		if _, err := c.Write([]byte("x")); !errors.Is(err, errSeqWrap) {
			t.Fatalf("write past the last sequence number: %v", err)
		}
	}
	p.send(p.data("x"))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, errSeqWrap) {
		t.Fatalf("read past the last sequence number: %v", err)
	}
}

// TestPadding: padding of the inner plaintext is taken off, in records
// of every type; the whole inner plaintext, padding included, may not
// exceed 2^14+1 bytes (RFC 8446, section 5.4).
func TestPadding(t *testing.T) {
	c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
	full := pattern(maxPlaintext-10, 0)
	p.send(p.w.seal(23, []byte("padded"), 1000), p.w.seal(23, nil, 50), p.w.seal(23, []byte("\x00zero\x00"), 3),
		p.w.seal(23, full, 10), // 2^14+1 bytes in all: the limit
		p.w.seal(21, []byte{1, alertUserCanceled}, 7))
	ku := p.w.seal(22, []byte{24, 0, 0, 1, 0}, 20)
	p.w.next()
	p.send(ku, p.data("after"))
	expectRead(t, c, "padded\x00zero\x00")
	if got := readFull(t, c, len(full)); !bytes.Equal(got, full) {
		t.Fatal("a record padded to the limit: other bytes")
	}
	expectRead(t, c, "after")

	for name, r := range map[string]struct {
		content []byte
		pad     int
	}{
		"content and padding": {[]byte("x"), maxPlaintext},
		"padding only":        {nil, maxPlaintext + 1},
		"content only":        {pattern(maxPlaintext+1, 0), 0},
	} {
		t.Run(name, func(t *testing.T) {
			c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
			p.send(p.data("before"), p.w.seal(23, r.content, r.pad), p.data("never"))
			expectRead(t, c, "before")
			_, err := c.Read(make([]byte, 1))
			sentAlert(t, err, alertRecordOverflow)
			p.expectAlert(alertLevelFatal, alertRecordOverflow)
		})
	}
}

// TestClientKeyUpdate: the client's KeyUpdate, asking for one back or not,
// alone or after data in the same write: the server reads on under the
// client's next key, and answers with its KeyUpdate, under its current
// key, before its next record, only when asked (RFC 8446, section 4.6.3).
func TestClientKeyUpdate(t *testing.T) {
	for _, id := range allSuites {
		for _, requested := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/requested=%v", tls.CipherSuiteName(id), requested), func(t *testing.T) {
				c, p := newPeer(t, id, 3, 2)
				p.send(p.data("before|"), p.keyUpdate(requested), p.data("after|"))
				expectRead(t, c, "before|after|")
				if _, err := c.Write([]byte("reply")); err != nil {
					t.Fatal(err)
				}
				typ, content := p.recv()
				if requested {
					if typ != 22 || !bytes.Equal(content, []byte{24, 0, 0, 1, 0}) {
						t.Fatalf("record type %d % x, want the server's KeyUpdate (update_not_requested)", typ, content)
					}
					p.r.next()
					typ, content = p.recv()
				}
				if typ != 23 || string(content) != "reply" {
					t.Fatalf("record type %d %q, want the reply", typ, content)
				}
				// Again: a second KeyUpdate, on the next key of both sides.
				p.send(p.keyUpdate(requested))
				p.send(p.data("again|"))
				expectRead(t, c, "again|")
				if _, err := c.Write([]byte("twice")); err != nil {
					t.Fatal(err)
				}
				p.expectData("twice")
				if want := map[bool]int{false: 0, true: 1}[requested]; p.keyUpds != want {
					t.Fatalf("%d more KeyUpdates from the server, want %d", p.keyUpds, want)
				}
			})
		}
	}
}

// TestClientKeyUpdateCryptoTLS: a client's KeyUpdate on a connection
// crypto/tls handshook and Export took over. The client's records are the
// test's, with the client's traffic secret from its key log; it reads with
// crypto/tls, which must take the server's KeyUpdate and key.
func TestClientKeyUpdateCryptoTLS(t *testing.T) {
	for _, requested := range []bool{false, true} {
		t.Run(fmt.Sprint("requested=", requested), func(t *testing.T) {
			s := newSession(t, tls.VersionTLS13, 0, "key k1\n")
			_ = s.client.SetDeadline(time.Now().Add(bound))
			clientSecret, _ := keyLogSecrets(t, s.keylog.String())
			if s.state.ClientSeq != 1 {
				t.Fatalf("client sequence %d, want 1 (the first line)", s.state.ClientSeq)
			}
			p := &peer{t: t, nc: s.client.NetConn(), w: newTKeys(t, s.state.Suite, clientSecret, 1)}
			p.send(p.data("before|"), p.keyUpdate(requested), p.data("after|"))
			expectRead(t, s.server, "before|after|")
			for i := range 3 {
				msg := fmt.Sprintf("reply %d|", i)
				if _, err := s.server.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				expectRead(t, s.client, msg)
				p.send(p.data(msg))
				expectRead(t, s.server, msg)
			}
			// The server's close_notify, under its newest key.
			if err := s.server.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if n, err := s.client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("client read after close_notify: %d, %v", n, err)
			}
		})
	}
}

// TestServerKeyUpdateCryptoTLS: the server asks crypto/tls's client for a
// KeyUpdate; the client answers with its own (update_not_requested), which
// the server takes before the client's next data.
func TestServerKeyUpdateCryptoTLS(t *testing.T) {
	s := newSession(t, tls.VersionTLS13, 0, "key k1\n")
	_ = s.client.SetDeadline(time.Now().Add(bound))
	for i := range 3 {
		if err := s.server.sendKeyUpdate(true); err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("ping %d|", i)
		if _, err := s.server.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		expectRead(t, s.client, msg)
		if _, err := s.client.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		expectRead(t, s.server, msg)
	}
}

// TestKeyUpdateFragmented: a KeyUpdate split across records, however.
func TestKeyUpdateFragmented(t *testing.T) {
	msg := []byte{24, 0, 0, 1, 1}
	for _, cuts := range [][]int{{1}, {2}, {3}, {4}, {1, 2, 3, 4}, {3, 4}} {
		t.Run(fmt.Sprint(cuts), func(t *testing.T) {
			c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
			var recs [][]byte
			prev := 0
			for _, cut := range append(cuts, len(msg)) {
				recs = append(recs, p.w.seal(22, msg[prev:cut], 0))
				prev = cut
			}
			p.w.next()
			// One record a write, then the data under the next key.
			for _, r := range recs {
				p.send(r)
			}
			p.send(p.data("after"))
			expectRead(t, c, "after")
			if _, err := c.Write([]byte("reply")); err != nil {
				t.Fatal(err)
			}
			p.expectData("reply")
			if p.keyUpds != 1 {
				t.Fatalf("%d KeyUpdates from the server, want 1", p.keyUpds)
			}
		})
	}
}

// TestHandshakeMessageErrors: what a client may not send after the
// handshake, each with the fatal alert it gets.
func TestHandshakeMessageErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		recs  func(p *peer) [][]byte
		alert uint8
	}{
		{"bytes after a KeyUpdate in its record", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, []byte{24, 0, 0, 1, 0, 24, 0, 0, 1, 0}, 0)}
		}, alertUnexpectedMessage},
		{"half a message after a KeyUpdate in its record", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, []byte{24, 0, 0, 1, 0, 24}, 0)}
		}, alertUnexpectedMessage},
		{"bytes after a fragmented KeyUpdate in its record", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, []byte{24, 0}, 0), p.w.seal(22, []byte{0, 1, 0, 24, 0, 0, 1, 0}, 0)}
		}, alertUnexpectedMessage},
		{"NewSessionTicket", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, append([]byte{4, 0, 0, 13}, make([]byte, 13)...), 0)}
		}, alertUnexpectedMessage},
		{"Finished", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, append([]byte{20, 0, 0, 32}, make([]byte, 32)...), 0)}
		}, alertUnexpectedMessage},
		{"ClientHello", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, append([]byte{1, 0, 0, 40}, make([]byte, 40)...), 0)}
		}, alertUnexpectedMessage},
		{"KeyUpdate of 2 bytes", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, []byte{24, 0, 0, 2, 0, 0}, 0)}
		}, alertDecodeError},
		{"KeyUpdate of 0 bytes", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, []byte{24, 0, 0, 0}, 0)}
		}, alertDecodeError},
		{"KeyUpdate request 2", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, []byte{24, 0, 0, 1, 2}, 0)}
		}, alertDecodeError},
		{"a message too large", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, []byte{24, 1, 0, 0}, 0)}
		}, alertDecodeError},
		{"an empty handshake record", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, nil, 0)}
		}, alertUnexpectedMessage},
		{"application data inside a handshake message", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, []byte{24, 0}, 0), p.w.seal(23, []byte("x"), 0)}
		}, alertUnexpectedMessage},
		{"an alert inside a handshake message", func(p *peer) [][]byte {
			return [][]byte{p.w.seal(22, []byte{24, 0}, 0), p.w.seal(21, []byte{1, alertUserCanceled}, 0), p.w.seal(22, []byte{0, 1, 0}, 0)}
		}, alertUnexpectedMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
			p.send(p.data("before"))
			p.send(tc.recs(p)...)
			p.send(p.data("never"))
			expectRead(t, c, "before")
			n, err := c.Read(make([]byte, 10))
			if n != 0 {
				t.Fatalf("read %d bytes", n)
			}
			sentAlert(t, err, tc.alert)
			p.expectAlert(alertLevelFatal, tc.alert)
			// Sticky, and nothing more is written.
			if _, err2 := c.Read(make([]byte, 10)); err2 != err {
				t.Fatalf("second read: %v, want %v", err2, err)
			}
			if _, err := c.Write([]byte("x")); err == nil {
				t.Fatal("a write after the fatal alert")
			}
			_ = c.Close()
			p.expectNothing()
		})
	}
}

// TestTamperedRecord: a record whose ciphertext, tag or header changed is
// refused with bad_record_mac, every later Read fails the same, and the
// server writes nothing after its alert.
func TestTamperedRecord(t *testing.T) {
	for _, id := range allSuites {
		for _, where := range []string{"first byte", "last byte", "header version"} {
			t.Run(tls.CipherSuiteName(id)+"/"+where, func(t *testing.T) {
				c, p := newPeer(t, id, 0, 0)
				good := p.data("good|")
				rec := p.data("secret data")
				switch where {
				case "first byte":
					rec[5] ^= 1
				case "last byte": // the tag
					rec[len(rec)-1] ^= 0x80
				case "header version": // additional data; refused before decrypting
					rec[2] = 4
				}
				p.send(good, rec, p.data("later"))
				expectRead(t, c, "good|")
				_, err := c.Read(make([]byte, 100))
				want := uint8(alertBadRecordMAC)
				if where == "header version" {
					want = alertDecodeError
				}
				sentAlert(t, err, want)
				for range 3 {
					if n, err2 := c.Read(make([]byte, 100)); n != 0 || err2 != err {
						t.Fatalf("later read: %d, %v; want %v", n, err2, err)
					}
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Temporary() { //nolint:staticcheck // what Read must not say here
					t.Fatal("a temporary error")
				}
				if _, err := c.Write([]byte("x")); err == nil {
					t.Fatal("a write after the fatal alert")
				}
				p.expectAlert(alertLevelFatal, want)
				_ = c.Close()
				p.expectNothing()
			})
		}
	}
}

// TestTamperedRecordCryptoTLS: crypto/tls's client gets the server's
// bad_record_mac.
func TestTamperedRecordCryptoTLS(t *testing.T) {
	s := newSession(t, tls.VersionTLS13, 0, "key k1\n")
	_ = s.client.SetDeadline(time.Now().Add(bound))
	clientSecret, _ := keyLogSecrets(t, s.keylog.String())
	p := &peer{t: t, nc: s.client.NetConn(), w: newTKeys(t, s.state.Suite, clientSecret, 1)}
	rec := p.data("tampered")
	rec[7] ^= 0xff
	p.send(rec)
	_, err := s.server.Read(make([]byte, 10))
	sentAlert(t, err, alertBadRecordMAC)
	if _, err2 := s.server.Read(make([]byte, 10)); err2 != err {
		t.Fatalf("second read: %v", err2)
	}
	_, err = s.client.Read(make([]byte, 10))
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || err.Error() != "remote error: tls: bad record MAC" {
		t.Fatalf("client read: %v, want the alert bad_record_mac", err)
	}
}

// TestRecordHeaderErrors: a header a TLS 1.3 record may not have is refused
// as soon as it came, without waiting for the body it announces.
func TestRecordHeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header []byte
		alert  uint8
	}{
		{"handshake", []byte{22, 3, 3, 0, 40}, alertUnexpectedMessage},
		{"alert", []byte{21, 3, 3, 0, 2}, alertUnexpectedMessage},
		{"change_cipher_spec", []byte{20, 3, 3, 0, 1}, alertUnexpectedMessage},
		{"unknown type", []byte{99, 3, 3, 0, 40}, alertUnexpectedMessage},
		{"version 0x0301", []byte{23, 3, 1, 0, 40}, alertDecodeError},
		{"version 0x0304", []byte{23, 3, 4, 0, 40}, alertDecodeError},
		{"version 0x0203", []byte{23, 2, 3, 0, 40}, alertDecodeError},
		{"length 2^14+257", []byte{23, 3, 3, 0x41, 0x01}, alertRecordOverflow},
		{"length 65535", []byte{23, 3, 3, 0xff, 0xff}, alertRecordOverflow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
			p.send(p.data("before"), tc.header)
			expectRead(t, c, "before")
			_, err := c.Read(make([]byte, 10))
			sentAlert(t, err, tc.alert)
			p.expectAlert(alertLevelFatal, tc.alert)
			if _, err2 := c.Read(make([]byte, 10)); err2 != err {
				t.Fatalf("second read: %v", err2)
			}
		})
	}
	// 2^14+256 is the largest length: this one is read whole and fails to
	// decrypt (its body is no record).
	c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
	p.send(append([]byte{23, 3, 3, 0x41, 0x00}, make([]byte, maxCiphertext)...))
	_, err := c.Read(make([]byte, 10))
	sentAlert(t, err, alertBadRecordMAC)
}

// TestInnerPlaintextErrors: what decrypts but is no record.
func TestInnerPlaintextErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rec   func(k *tkeys) []byte
		alert uint8
	}{
		{"all zeros", func(k *tkeys) []byte { return k.sealInner(make([]byte, 30)) }, alertUnexpectedMessage},
		{"empty", func(k *tkeys) []byte { return k.sealInner(nil) }, alertUnexpectedMessage},
		{"one zero", func(k *tkeys) []byte { return k.sealInner([]byte{0}) }, alertUnexpectedMessage},
		{"ciphertext shorter than the tag", func(k *tkeys) []byte { return []byte{23, 3, 3, 0, 3, 1, 2, 3} }, alertBadRecordMAC},
		{"no ciphertext", func(k *tkeys) []byte { return []byte{23, 3, 3, 0, 0} }, alertBadRecordMAC},
		{"type change_cipher_spec", func(k *tkeys) []byte { return k.seal(20, []byte{1}, 0) }, alertUnexpectedMessage},
		{"type 99", func(k *tkeys) []byte { return k.seal(99, []byte("x"), 0) }, alertUnexpectedMessage},
		{"content 2^14+1", func(k *tkeys) []byte { return k.seal(23, make([]byte, maxPlaintext+1), 0) }, alertRecordOverflow},
		{"handshake content 2^14+1", func(k *tkeys) []byte { return k.seal(22, make([]byte, maxPlaintext+1), 0) }, alertRecordOverflow},
		{"alert of 1 byte", func(k *tkeys) []byte { return k.seal(21, []byte{2}, 0) }, alertDecodeError},
		{"alert of 3 bytes", func(k *tkeys) []byte { return k.seal(21, []byte{1, 0, 0}, 0) }, alertDecodeError},
		{"empty alert", func(k *tkeys) []byte { return k.seal(21, nil, 0) }, alertDecodeError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
			p.send(p.data("before"), tc.rec(p.w), p.data("never"))
			expectRead(t, c, "before")
			_, err := c.Read(make([]byte, 10))
			sentAlert(t, err, tc.alert)
			p.expectAlert(alertLevelFatal, tc.alert)
			if _, err2 := c.Read(make([]byte, 10)); err2 != err {
				t.Fatalf("second read: %v", err2)
			}
		})
	}
	// At the limit: 2^14 bytes of content are taken.
	c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
	big := pattern(maxPlaintext, 3)
	p.send(p.w.seal(23, big, 0))
	if got := readFull(t, c, len(big)); !bytes.Equal(got, big) {
		t.Fatal("a full record: other bytes")
	}
}

// readThroughTemporary reads c until want came, through temporary errors (each
// must be the transport's, returned as is); it returns how many there were.
func readThroughTemporary(t *testing.T, c *Conn, want string, bufSize int) int {
	t.Helper()
	var got []byte
	temps := 0
	buf := make([]byte, bufSize)
	for len(got) < len(want) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		switch {
		case err == nil:
			if n == 0 {
				t.Fatal("Read returned 0, nil")
			}
		case err == errNoBytes:
			if n != 0 {
				t.Fatalf("%d bytes with the temporary error", n)
			}
			temps++
			if temps > 1<<20 {
				t.Fatal("no progress")
			}
		default:
			t.Fatalf("after %q: %v", got, err)
		}
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
	return temps
}

// TestTemporaryTransportError: a transport that has no bytes yet, mid
// header, mid body, between records or within a KeyUpdate: Read returns its
// error as is, records nothing, and goes on from where it stopped.
func TestTemporaryTransportError(t *testing.T) {
	for _, id := range allSuites {
		for _, bufSize := range []int{1, 3, 1 << 16} {
			t.Run(fmt.Sprintf("%s/buffer %d", tls.CipherSuiteName(id), bufSize), func(t *testing.T) {
				st := randomState(t, id, 0, 0)
				k := newTKeys(t, id, st.ClientSecret, 0)
				tr := &scriptConn{}
				c, err := New(tr, st, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				// Nothing at all yet.
				if n, err := c.Read(make([]byte, 10)); n != 0 || err != errNoBytes {
					t.Fatalf("read on nothing: %d, %v", n, err)
				}
				var stream []byte
				stream = append(stream, k.seal(23, []byte("hello "), 0)...)
				stream = append(stream, k.seal(22, []byte{24, 0}, 0)...)
				stream = append(stream, k.seal(22, []byte{0, 1, 1}, 5)...)
				k.next()
				stream = append(stream, k.seal(23, []byte("world"), 3)...)
				tr.feedBytewise(stream)
				if temps := readThroughTemporary(t, c, "hello world", bufSize); temps < len(stream)-1 {
					t.Fatalf("%d temporary errors, want one a byte", temps)
				}
				// The server answered the KeyUpdate, under its first key.
				w := newTKeys(t, id, st.ServerSecret, 0)
				rec, err := readRec(&tr.written)
				if err != nil {
					t.Fatal(err)
				}
				if typ, content, err := w.open(rec); err != nil || typ != 22 || !bytes.Equal(content, []byte{24, 0, 0, 1, 0}) {
					t.Fatalf("server wrote %d % x, %v; want its KeyUpdate", typ, content, err)
				}
				// In bigger pieces, split anyhow, then a clean EOF.
				stream = stream[:0]
				for i := range 5 {
					stream = append(stream, k.seal(23, fmt.Appendf(nil, "rec%d|", i), i)...)
				}
				for i := 0; i < len(stream); i += 7 {
					if i > 0 {
						tr.fail(errNoBytes)
					}
					tr.feed(stream[i:min(i+7, len(stream))])
				}
				readThroughTemporary(t, c, "rec0|rec1|rec2|rec3|rec4|", bufSize)
				tr.mu.Lock()
				tr.eof = true
				tr.mu.Unlock()
				for range 2 {
					if n, err := c.Read(make([]byte, 10)); n != 0 || err != io.EOF {
						t.Fatalf("read at EOF: %d, %v", n, err)
					}
				}
			})
		}
	}
}

// TestTransportEOF: the transport's EOF between records is io.EOF; within
// one, io.ErrUnexpectedEOF; both sticky. Another permanent error is
// returned and sticky.
func TestTransportEOF(t *testing.T) {
	st := randomState(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
	rec := newTKeys(t, st.Suite, st.ClientSecret, 0).seal(23, []byte("data"), 0)
	for _, tc := range []struct {
		name  string
		cut   int // bytes of the second record before EOF
		want  error
		final error // the transport's error (io.EOF if nil)
	}{
		{"at a record boundary", 0, io.EOF, nil},
		{"within a header", 3, io.ErrUnexpectedEOF, nil},
		{"after a header", 5, io.ErrUnexpectedEOF, nil},
		{"within a body", len(rec) - 1, io.ErrUnexpectedEOF, nil},
		{"wrapped EOF at a boundary", 0, io.EOF, fmt.Errorf("read: %w", io.EOF)},
		{"permanent error", 2, net.ErrClosed, net.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newTKeys(t, st.Suite, st.ClientSecret, 0)
			tr := &scriptConn{}
			tr.feed(k.seal(23, []byte("data"), 0))
			tr.fail(errNoBytes)
			tr.feed(k.seal(23, []byte("more"), 0)[:tc.cut])
			if tc.final != nil {
				tr.fail(tc.final)
			} else {
				tr.fail(io.EOF)
			}
			// After the end, bytes that must not be read.
			tr.feed(k.seal(23, []byte("late"), 0))
			c, err := New(tr, st, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			expectRead(t, c, "data")
			if _, err := c.Read(make([]byte, 10)); err != errNoBytes {
				t.Fatalf("read: %v, want the temporary error", err)
			}
			for range 3 {
				if n, err := c.Read(make([]byte, 10)); n != 0 || !errors.Is(err, tc.want) {
					t.Fatalf("read: %d, %v; want %v", n, err, tc.want)
				}
			}
			if tr.written.Len() != 0 {
				t.Fatalf("%d bytes written at the transport's end", tr.written.Len())
			}
		})
	}
	// Over TCP: the peer's FIN after a whole record, and mid-record.
	for _, cut := range []int{0, 10} {
		c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
		p.send(p.data("last"), p.data("partial")[:cut])
		_ = p.nc.(*net.TCPConn).CloseWrite()
		expectRead(t, c, "last")
		want := map[int]error{0: io.EOF, 10: io.ErrUnexpectedEOF}[cut]
		for range 2 {
			if _, err := c.Read(make([]byte, 10)); err != want {
				t.Fatalf("cut %d: %v, want %v", cut, err, want)
			}
		}
		// The write half is still open.
		if _, err := c.Write([]byte("still")); err != nil {
			t.Fatal(err)
		}
		p.expectData("still")
	}
}

// TestReadDeadlineResumes: a read deadline is a temporary error of the
// transport: the record half read when it passed goes on after.
func TestReadDeadlineResumes(t *testing.T) {
	c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
	rec := p.data("across a deadline")
	p.send(rec[:9])
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 100))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read: %v, want a timeout", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(bound))
	p.send(rec[9:])
	expectRead(t, c, "across a deadline")
}

// TestReceivedAlerts: the client's alerts. A fatal one is an *AlertError
// with Received, sticky; user_canceled is passed over; close_notify is
// io.EOF, sticky, after the data before it, and leaves writing open.
func TestReceivedAlerts(t *testing.T) {
	for _, tc := range []struct {
		level, code uint8
	}{{alertLevelFatal, 40}, {alertLevelFatal, alertBadRecordMAC}, {alertLevelWarning, 42}, {alertLevelFatal, alertCloseNotify + 80}} {
		t.Run(fmt.Sprint("alert ", tc.level, " ", tc.code), func(t *testing.T) {
			c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
			p.send(p.data("before"), p.w.seal(21, []byte{tc.level, tc.code}, 0), p.data("never"))
			expectRead(t, c, "before")
			for range 2 {
				_, err := c.Read(make([]byte, 10))
				var ae *AlertError
				if !errors.As(err, &ae) || !ae.Received || ae.Code != tc.code {
					t.Fatalf("read: %v, want the received alert %d", err, tc.code)
				}
			}
			// No alert answers an alert: the first record the peer gets
			// after it is Close's close_notify.
			_ = c.Close()
			p.expectAlert(alertLevelWarning, alertCloseNotify)
			p.expectNothing()
		})
	}
	t.Run("user_canceled", func(t *testing.T) {
		c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
		p.send(p.data("one|"), p.w.seal(21, []byte{alertLevelWarning, alertUserCanceled}, 0), p.data("two|"),
			p.w.seal(21, []byte{alertLevelWarning, alertCloseNotify}, 0))
		expectRead(t, c, "one|two|")
		if _, err := c.Read(make([]byte, 10)); err != io.EOF {
			t.Fatalf("read: %v, want EOF", err)
		}
	})
	t.Run("close_notify", func(t *testing.T) {
		c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
		p.send(p.data("last words"), p.w.seal(21, []byte{alertLevelWarning, alertCloseNotify}, 0), p.data("never"))
		expectRead(t, c, "last words")
		for range 3 {
			if n, err := c.Read(make([]byte, 10)); n != 0 || err != io.EOF {
				t.Fatalf("read: %d, %v; want EOF", n, err)
			}
		}
		if _, err := c.Write([]byte("after your close_notify")); err != nil {
			t.Fatal(err)
		}
		p.expectData("after your close_notify")
		_ = c.Close()
		p.expectAlert(alertLevelWarning, alertCloseNotify)
		p.expectNothing()
	})
	t.Run("close_notify from crypto/tls", func(t *testing.T) {
		s := newSession(t, tls.VersionTLS13, 0, "key k1\nrest")
		expectRead(t, s.server, "rest")
		_ = s.client.CloseWrite()
		for range 2 {
			if _, err := s.server.Read(make([]byte, 10)); err != io.EOF {
				t.Fatalf("read: %v, want EOF", err)
			}
		}
	})
}

// TestCloseWrite: close_notify once; later writes fail with ErrClosed;
// a KeyUpdate asked for after it is not answered, and reading goes on.
func TestCloseWrite(t *testing.T) {
	c, p := newPeer(t, tls.TLS_AES_128_GCM_SHA256, 0, 0)
	if _, err := c.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after CloseWrite: %v", err)
	}
	if n, err := c.Write(nil); n != 0 || !errors.Is(err, ErrClosed) {
		t.Fatalf("empty write after CloseWrite: %d, %v", n, err)
	}
	p.send(p.keyUpdate(true), p.data("still reading"))
	expectRead(t, c, "still reading")
	p.expectData("bye")
	p.expectAlert(alertLevelWarning, alertCloseNotify)
	_ = c.Close()
	p.expectNothing()
}

// TestConcurrentReadWrite: Read and Write from their own goroutines on
// both sides, with KeyUpdates asked both ways meanwhile (the server's
// answer is written from its reading goroutine). Run with -race.
func TestConcurrentReadWrite(t *testing.T) {
	for _, id := range allSuites {
		t.Run(tls.CipherSuiteName(id), func(t *testing.T) {
			server, client := mirroredPair(t, randomState(t, id, 0, 0))
			const chunks, size = 200, 3000
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			writer := func(c *Conn, seed int) {
				defer wg.Done()
				for i := range chunks {
					if i%17 == 0 {
						if err := c.sendKeyUpdate(true); err != nil {
							errs <- err
							return
						}
					}
					if _, err := c.Write(pattern(size, seed+i)); err != nil {
						errs <- err
						return
					}
				}
			}
			reader := func(c *Conn, seed int) {
				defer wg.Done()
				for i := range chunks {
					b := make([]byte, size)
					if _, err := io.ReadFull(c, b); err != nil {
						errs <- err
						return
					}
					if !bytes.Equal(b, pattern(size, seed+i)) {
						errs <- fmt.Errorf("chunk %d: other bytes", i)
						return
					}
				}
			}
			wg.Add(4)
			go writer(server, 1)
			go writer(client, 2)
			go reader(client, 1)
			go reader(server, 2)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}
