package tls13

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/subordinate/subordinate/internal/proctest"
)

// testCert is a self-signed certificate for 127.0.0.1
// (proctest.SelfSigned).
func testCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	certFile, keyFile, pool := proctest.SelfSigned(t, "127.0.0.1")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cert, pool
}

// session is a TLS connection over loopback TCP whose server side was
// exported after the handshake and the client's first line, and goes on
// as a Conn.
type session struct {
	client *tls.Conn
	server *Conn
	state  *State
	first  string        // the line the tls.Conn read before the export
	plain  []byte        // what it had decrypted past the line
	keylog *bytes.Buffer // the client's key log (its traffic secrets)
}

// newSession handshakes with crypto/tls on both sides (version, suite),
// sends first from the client, reads it with the server's tls.Conn
// through a small buffer (so that crypto/tls holds the rest of it), and
// exports the server's state into a Conn over the same socket.
func newSession(t *testing.T, version uint16, suite uint16, first string) *session {
	t.Helper()
	cert, pool := testCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// A session cache: the server sends a ticket, under the application
	// key, so the server's sequence number starts past it.
	ccfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: version, MaxVersion: version,
		ClientSessionCache: tls.NewLRUClientSessionCache(1), KeyLogWriter: new(bytes.Buffer)}
	if suite != 0 && version == tls.VersionTLS12 {
		ccfg.CipherSuites = []uint16{suite}
	}
	type dialed struct {
		c   *tls.Conn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			done <- dialed{err: err}
			return
		}
		c := tls.Client(nc, ccfg)
		if err = c.Handshake(); err == nil {
			_, err = c.Write([]byte(first))
		}
		done <- dialed{c, err}
	}()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	d := <-done
	if d.err != nil {
		t.Fatal(d.err)
	}
	t.Cleanup(func() { d.c.Close(); nc.Close() })
	// Read the first line a byte at a time: crypto/tls keeps the rest of
	// the record decrypted (plain).
	var line []byte
	for !bytes.HasSuffix(line, []byte("\n")) {
		var b [1]byte
		if _, err := tc.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		line = append(line, b[0])
	}
	st, raw, plain, err := Export(tc)
	if err != nil {
		if version != tls.VersionTLS13 && errors.Is(err, ErrNotExportable) {
			return &session{client: d.c, first: string(line), keylog: ccfg.KeyLogWriter.(*bytes.Buffer)}
		}
		t.Fatal(err)
	}
	c, err := New(nc, st, raw, plain)
	if err != nil {
		t.Fatal(err)
	}
	return &session{client: d.c, server: c, state: st, first: string(line), plain: plain, keylog: ccfg.KeyLogWriter.(*bytes.Buffer)}
}

func TestExportAndGoOn(t *testing.T) {
	s := newSession(t, tls.VersionTLS13, 0, "key k1\nmore after the key")
	if s.first != "key k1\n" {
		t.Fatalf("first line %q", s.first)
	}
	if s.state.ServerSeq != 1 { // the session ticket
		t.Errorf("server sequence %d, want 1 (one NewSessionTicket)", s.state.ServerSeq)
	}
	got := make([]byte, len("more after the key"))
	if _, err := io.ReadFull(s.server, got); err != nil || string(got) != "more after the key" {
		t.Fatalf("read %q, %v", got, err)
	}
	// Both ways, with writes larger than a record.
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000)
	go func() { _, _ = s.client.Write(big) }()
	in := make([]byte, len(big))
	if _, err := io.ReadFull(s.server, in); err != nil || !bytes.Equal(in, big) {
		t.Fatalf("server read %d bytes, %v", len(in), err)
	}
	go func() { _, _ = s.server.Write(big) }()
	if _, err := io.ReadFull(s.client, in); err != nil || !bytes.Equal(in, big) {
		t.Fatalf("client read %v", err)
	}
	// The server's close_notify is the client's EOF; the client's, the
	// server's.
	if err := s.server.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.Read(in); err != io.EOF {
		t.Fatalf("client read after close_notify: %v", err)
	}
	if _, err := s.server.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after CloseWrite: %v", err)
	}
	_ = s.client.Close()
	if _, err := s.server.Read(in); err != io.EOF {
		t.Fatalf("server read after the client's close_notify: %v", err)
	}
}

func TestExportRefusesTLS12(t *testing.T) {
	s := newSession(t, tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "key k1\n")
	if s.server != nil {
		t.Fatal("a TLS 1.2 connection was exported")
	}
}

func TestEcho(t *testing.T) {
	s := newSession(t, tls.VersionTLS13, 0, "key k1\n")
	go func() {
		r := bufio.NewReader(s.server)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				_ = s.server.CloseWrite()
				return
			}
			if _, err := s.server.Write(line); err != nil {
				return
			}
		}
	}()
	r := bufio.NewReader(s.client)
	for i := 0; i < 100; i++ {
		msg := []byte("ping\n")
		if _, err := s.client.Write(msg); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadBytes('\n')
		if err != nil || string(got) != "ping\n" {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
}
