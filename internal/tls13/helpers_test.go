package tls13

// Test helpers: a TLS 1.3 record codec written apart from the package's
// (so that a bug in suite.go or conn.go is not mirrored in what checks
// it), a peer speaking records over a socket with it, socket pairs,
// mirrored States, and scripted transports.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// bound keeps a broken test from hanging; no test asserts on time.
const bound = 20 * time.Second

var allSuites = []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}

// tsuite is the test's own description of a TLS 1.3 suite.
type tsuite struct {
	hash   func() hash.Hash
	keyLen int
	aead   func(key []byte) (cipher.AEAD, error)
}

func gcm(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func testSuiteOf(t testing.TB, id uint16) tsuite {
	t.Helper()
	switch id {
	case tls.TLS_AES_128_GCM_SHA256:
		return tsuite{sha256.New, 16, gcm}
	case tls.TLS_AES_256_GCM_SHA384:
		return tsuite{sha512.New384, 32, gcm}
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		return tsuite{sha256.New, 32, chacha20poly1305.New}
	}
	t.Fatalf("no test suite %#04x", id)
	return tsuite{}
}

// hkdfExpandLabel is RFC 8446's HKDF-Expand-Label, empty context.
func hkdfExpandLabel(h func() hash.Hash, secret []byte, label string, n int) []byte {
	var info []byte
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(len("tls13 "+label)))
	info = append(info, "tls13 "+label...)
	info = append(info, 0)
	out, err := hkdf.Expand(h, secret, string(info), n)
	if err != nil {
		panic(err)
	}
	return out
}

// tkeys is one direction's record protection, as the test computes it.
type tkeys struct {
	s      tsuite
	secret []byte
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
}

func newTKeys(t testing.TB, suite uint16, secret []byte, seq uint64) *tkeys {
	t.Helper()
	k := &tkeys{s: testSuiteOf(t, suite)}
	k.set(secret)
	k.seq = seq
	return k
}

func (k *tkeys) set(secret []byte) {
	aead, err := k.s.aead(hkdfExpandLabel(k.s.hash, secret, "key", k.s.keyLen))
	if err != nil {
		panic(err)
	}
	k.secret, k.aead, k.iv, k.seq = secret, aead, hkdfExpandLabel(k.s.hash, secret, "iv", 12), 0
}

// next moves to the next traffic secret, as a KeyUpdate does.
func (k *tkeys) next() { k.set(hkdfExpandLabel(k.s.hash, k.secret, "traffic upd", k.s.hash().Size())) }

func (k *tkeys) nonce() []byte {
	n := append([]byte(nil), k.iv...)
	for i := range 8 {
		n[4+i] ^= byte(k.seq >> (56 - 8*i))
	}
	return n
}

// sealInner returns a record protecting inner, the whole TLSInnerPlaintext
// (content, type, padding), with the next sequence number.
func (k *tkeys) sealInner(inner []byte) []byte {
	hdr := []byte{23, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(inner)+k.aead.Overhead()))
	out := k.aead.Seal(hdr, k.nonce(), inner, hdr)
	k.seq++
	return out
}

// seal returns a record of content type typ, with pad zeros of padding.
func (k *tkeys) seal(typ byte, content []byte, pad int) []byte {
	inner := append(append([]byte(nil), content...), typ)
	return k.sealInner(append(inner, make([]byte, pad)...))
}

// open decrypts one whole record.
func (k *tkeys) open(rec []byte) (typ byte, content []byte, err error) {
	if len(rec) < 5 || rec[0] != 23 || rec[1] != 3 || rec[2] != 3 || int(binary.BigEndian.Uint16(rec[3:])) != len(rec)-5 {
		return 0, nil, fmt.Errorf("bad record header % x", rec[:min(5, len(rec))])
	}
	inner, err := k.aead.Open(nil, k.nonce(), rec[5:], rec[:5])
	if err != nil {
		return 0, nil, err
	}
	k.seq++
	i := len(inner) - 1
	for i >= 0 && inner[i] == 0 {
		i--
	}
	if i < 0 {
		return 0, nil, errors.New("no content type")
	}
	return inner[i], inner[:i], nil
}

// readRec reads one whole record from r.
func readRec(r io.Reader) ([]byte, error) {
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	rec := make([]byte, 5+int(binary.BigEndian.Uint16(hdr[3:])))
	copy(rec, hdr)
	_, err := io.ReadFull(r, rec[5:])
	return rec, err
}

// randomState is a State with random secrets of suite's hash size.
func randomState(t testing.TB, suite uint16, clientSeq, serverSeq uint64) *State {
	t.Helper()
	n := testSuiteOf(t, suite).hash().Size()
	st := &State{Suite: suite, ClientSecret: make([]byte, n), ServerSecret: make([]byte, n), ClientSeq: clientSeq, ServerSeq: serverSeq}
	_, _ = rand.Read(st.ClientSecret)
	_, _ = rand.Read(st.ServerSecret)
	return st
}

// mirror is st seen from the client: a Conn of it reads what st's writes
// and writes what st's reads.
func mirror(st *State) *State {
	return &State{Suite: st.Suite, ClientSecret: st.ServerSecret, ServerSecret: st.ClientSecret, ClientSeq: st.ServerSeq, ServerSeq: st.ClientSeq}
}

// tcpPair returns the two ends of a loopback TCP connection, with
// deadlines that keep a broken test from hanging.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	_ = a.SetDeadline(time.Now().Add(bound))
	_ = b.SetDeadline(time.Now().Add(bound))
	return a, b
}

// mirroredPair returns a server Conn of st and a client Conn of its mirror
// over loopback TCP.
func mirroredPair(t testing.TB, st *State) (server, client *Conn) {
	t.Helper()
	a, b := tcpPair(t)
	server, err := New(a, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err = New(b, mirror(st), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return server, client
}

// peer is the client end of a server Conn, speaking records with the
// test's codec: w protects what it sends, r opens what the server sends.
type peer struct {
	t        testing.TB
	nc       net.Conn
	w, r     *tkeys
	keyUpds  int // KeyUpdates received from the server (update_requested=0)
	received []byte
}

// newPeer returns a server Conn of a random State (suite, sequence
// numbers) over loopback TCP, and its peer.
func newPeer(t testing.TB, suite uint16, clientSeq, serverSeq uint64) (*Conn, *peer) {
	t.Helper()
	st := randomState(t, suite, clientSeq, serverSeq)
	a, b := tcpPair(t)
	c, err := New(a, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, &peer{t: t, nc: b, w: newTKeys(t, suite, st.ClientSecret, clientSeq), r: newTKeys(t, suite, st.ServerSecret, serverSeq)}
}

// send writes recs in one write.
func (p *peer) send(recs ...[]byte) {
	p.t.Helper()
	if _, err := p.nc.Write(bytes.Join(recs, nil)); err != nil {
		p.t.Fatal(err)
	}
}

// data is an application data record.
func (p *peer) data(s string) []byte { return p.w.seal(23, []byte(s), 0) }

// keyUpdate is a KeyUpdate record; the peer moves to its next key.
func (p *peer) keyUpdate(requested bool) []byte {
	body := byte(0)
	if requested {
		body = 1
	}
	rec := p.w.seal(22, []byte{24, 0, 0, 1, body}, 0)
	p.w.next()
	return rec
}

// recv reads and opens one record of the server's.
func (p *peer) recv() (byte, []byte) {
	p.t.Helper()
	rec, err := readRec(p.nc)
	if err != nil {
		p.t.Fatalf("peer: reading a record: %v", err)
	}
	typ, content, err := p.r.open(rec)
	if err != nil {
		p.t.Fatalf("peer: opening a record (seq %d): %v", p.r.seq, err)
	}
	return typ, content
}

// expectData reads the server's records until want came, following its
// KeyUpdates (not requesting one): anything else fails the test.
func (p *peer) expectData(want string) {
	p.t.Helper()
	for len(p.received) < len(want) {
		typ, content := p.recv()
		switch {
		case typ == 23:
			p.received = append(p.received, content...)
		case typ == 22 && bytes.Equal(content, []byte{24, 0, 0, 1, 0}):
			p.keyUpds++
			p.r.next()
		default:
			p.t.Fatalf("peer: record type %d % x, want application data", typ, content)
		}
	}
	if got := string(p.received[:len(want)]); got != want {
		p.t.Fatalf("peer received %q, want %q", got, want)
	}
	p.received = p.received[len(want):]
}

// expectAlert reads the server's next record, which must be the alert
// (level, code), then the end of its records.
func (p *peer) expectAlert(level, code byte) {
	p.t.Helper()
	typ, content := p.recv()
	if typ != 21 || !bytes.Equal(content, []byte{level, code}) {
		p.t.Fatalf("peer: record type %d % x, want alert %d %d", typ, content, level, code)
	}
}

// expectNothing checks the server wrote nothing more, once it closed the
// transport.
func (p *peer) expectNothing() {
	p.t.Helper()
	b, err := io.ReadAll(p.nc)
	if err != nil || len(b) > 0 {
		p.t.Fatalf("peer: %d more bytes, %v; want EOF", len(b), err)
	}
}

// readFull reads exactly n bytes of application data from c.
func readFull(t testing.TB, c io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return b
}

// expectRead reads want from c.
func expectRead(t testing.TB, c io.Reader, want string) {
	t.Helper()
	if got := readFull(t, c, len(want)); string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// sentAlert checks err is the error of a Read that failed on this side
// and sent the fatal alert code.
func sentAlert(t testing.TB, err error, code uint8) {
	t.Helper()
	var ae *AlertError
	if err == nil || !errors.As(err, &ae) || ae.Received || ae.Code != code {
		t.Fatalf("error %v, want one sending alert %d", err, code)
	}
}

// tempError is a transport's "no bytes yet".
type tempError struct{}

func (*tempError) Error() string   { return "no bytes yet" }
func (*tempError) Timeout() bool   { return false }
func (*tempError) Temporary() bool { return true }

var errNoBytes net.Error = &tempError{}

// scriptConn is a transport whose reads follow a script: bytes (handed
// out at most as asked) and errors, one per Read. Past the script, it
// returns errNoBytes, or io.EOF once eof is set. Writes are kept.
type scriptConn struct {
	mu      sync.Mutex
	steps   []step
	eof     bool
	written bytes.Buffer
}

type step struct {
	b   []byte
	err error
}

// feed appends b to the script, one byte per Read with errNoBytes between.
func (s *scriptConn) feedBytewise(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range b {
		s.steps = append(s.steps, step{b: b[i : i+1]}, step{err: errNoBytes})
	}
}

func (s *scriptConn) feed(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, step{b: append([]byte(nil), b...)})
}

func (s *scriptConn) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, step{err: err})
}

func (s *scriptConn) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.steps) == 0 {
		if s.eof {
			return 0, io.EOF
		}
		return 0, errNoBytes
	}
	st := &s.steps[0]
	if st.err != nil {
		s.steps = s.steps[1:]
		return 0, st.err
	}
	n := copy(p, st.b)
	st.b = st.b[n:]
	if len(st.b) == 0 {
		s.steps = s.steps[1:]
	}
	return n, nil
}

func (s *scriptConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written.Write(p)
}

func (s *scriptConn) Close() error                     { return nil }
func (s *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *scriptConn) SetDeadline(time.Time) error      { return nil }
func (s *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (s *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// keyLogSecrets returns the application traffic secrets of a key log.
func keyLogSecrets(t testing.TB, log string) (client, server []byte) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		b, err := hex.DecodeString(f[2])
		if err != nil {
			t.Fatal(err)
		}
		switch f[0] {
		case "CLIENT_TRAFFIC_SECRET_0":
			client = b
		case "SERVER_TRAFFIC_SECRET_0":
			server = b
		}
	}
	if client == nil || server == nil {
		t.Fatalf("no application traffic secrets in the key log:\n%s", log)
	}
	return client, server
}
