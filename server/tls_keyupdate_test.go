package server

// A client that sends a TLS 1.3 KeyUpdate to a Conn on the loop. Go's
// crypto/tls client has no API to send one, so the test encrypts its own
// records after a crypto/tls handshake, with the client's traffic secret
// from KeyLogWriter (RFC 8446, sections 5.2, 7.1-7.3 and 4.6.3), and
// reads with the crypto/tls client, which handles the server's KeyUpdate.

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"net"
	"strings"
	"testing"
	"time"
)

// expandLabel is TLS 1.3's HKDF-Expand-Label with an empty context.
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) []byte {
	full := "tls13 " + label
	info := binary.BigEndian.AppendUint16(nil, uint16(n))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0)
	out, err := hkdf.Expand(h, secret, string(info), n)
	if err != nil {
		panic(err)
	}
	return out
}

// recordWriter encrypts TLS 1.3 records with one traffic secret.
type recordWriter struct {
	h      func() hash.Hash
	keyLen int
	secret []byte
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
}

func (w *recordWriter) setSecret(secret []byte) {
	w.secret = secret
	block, err := aes.NewCipher(expandLabel(w.h, secret, "key", w.keyLen))
	if err != nil {
		panic(err)
	}
	w.aead, _ = cipher.NewGCM(block)
	w.iv, w.seq = expandLabel(w.h, secret, "iv", 12), 0
}

// next moves to the next traffic secret, as a KeyUpdate does.
func (w *recordWriter) next() { w.setSecret(expandLabel(w.h, w.secret, "traffic upd", w.h().Size())) }

// record returns one encrypted record of content type typ.
func (w *recordWriter) record(typ byte, data []byte) []byte {
	inner := append(append([]byte(nil), data...), typ)
	hdr := []byte{23, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(inner)+w.aead.Overhead()))
	nonce := append([]byte(nil), w.iv...)
	for i := range 8 {
		nonce[4+i] ^= byte(w.seq >> (56 - 8*i))
	}
	w.seq++
	return w.aead.Seal(hdr, nonce, inner, hdr)
}

// TestTLSLoopKeyUpdate: a client's KeyUpdate (asking for one back) to a
// TLS 1.3 Conn on the loop: the server reads on with the client's new
// key, answers with its own KeyUpdate (written through gnet), and the
// echo after it reaches the client under the server's new key.
func TestTLSLoopKeyUpdate(t *testing.T) {
	t.Parallel()
	hs := tlsLoopHarness(t, ForwardRelay, nil)
	testKeyUpdate(t, hs, 0)
}

// TestTLSSessionKeyUpdate: the same through a connection worker 0
// terminated and handed off to worker 1, the owner of its key, with its
// TLS 1.3 session (tls_session.go): the owner's record layer
// (internal/tls13) reads the client's KeyUpdate and answers it.
func TestTLSSessionKeyUpdate(t *testing.T) {
	t.Parallel()
	hs := tlsLoopHarness(t, ForwardHandoff, func(hs *harness) { hs.cfg.ForwardTLS = ForwardTLSHandoff })
	testKeyUpdate(t, hs, 1)
}

// testKeyUpdate dials worker 0 with a key of worker owner and sends a
// KeyUpdate that asks for the server's, as TestTLSLoopKeyUpdate says.
func testKeyUpdate(t *testing.T, hs *harness, owner int) {
	key := keyFor(owner, "keyupdate", 0)
	var keylog bytes.Buffer
	cfg := &tls.Config{RootCAs: hs.roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13, KeyLogWriter: &keylog}
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: bound}, "tcp", hs.ownTLS[0], cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(bound))
	w := &recordWriter{h: sha256.New, keyLen: 16}
	switch s := tc.ConnectionState().CipherSuite; s {
	case tls.TLS_AES_128_GCM_SHA256:
	case tls.TLS_AES_256_GCM_SHA384:
		w.h, w.keyLen = sha512.New384, 32
	default:
		t.Skipf("cipher suite %s: the test encrypts with AES-GCM only", tls.CipherSuiteName(s))
	}
	var secret []byte
	for _, line := range strings.Split(keylog.String(), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "CLIENT_TRAFFIC_SECRET_0" {
			secret, _ = hex.DecodeString(f[2])
		}
	}
	if secret == nil {
		t.Fatalf("no CLIENT_TRAFFIC_SECRET_0 in the key log:\n%s", keylog.String())
	}
	w.setSecret(secret)
	raw := tc.NetConn()
	c := &client{Conn: tc}
	c.r = bufio.NewReader(tc)

	// The first record, under the first key: the preamble and a
	// request, served once the connection is on the loop.
	if _, err := raw.Write(w.record(23, []byte(key+"\nbefore|"))); err != nil {
		t.Fatal(err)
	}
	in := c.readInfo(t)
	if in["shard"] != fmt.Sprint(owner) || in["via"] != "0" || in["relayed"] != "false" || in["tls"] != "true" {
		t.Fatalf("info %v: want shard %d via 0, not relayed, TLS", in, owner)
	}
	c.expect(t, "before|")
	waitFor(t, "the connection on the loop", func() bool { return offLoopConns(t, hs, owner) == 0 })

	// KeyUpdate, update_requested, then a request under the new key.
	ku := w.record(22, []byte{24, 0, 0, 1, 1})
	w.next()
	if _, err := raw.Write(append(ku, w.record(23, []byte("after|"))...)); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "after|")
	// Once more under the same keys: the server's read key stays.
	if _, err := raw.Write(w.record(23, []byte("again|"))); err != nil {
		t.Fatal(err)
	}
	c.expect(t, "again|")
	_, _ = raw.Write(w.record(21, []byte{1, 0})) // close_notify
	if got := c.readAll(t); len(got) != 0 {
		t.Fatalf("after close_notify: %q", got)
	}
	hs.h[owner].waitCounts(t, "OnClose", func(o, c int) bool { return o == 1 && c == 1 })
	if err, _ := hs.h[owner].errOf(key); err != nil {
		t.Fatalf("OnClose: %v, want nil", err)
	}
	hs.stopAll()
	hs.h[owner].checkBalanced(t)
}
