package tls13

// Export: the crypto/tls internals it reads, what it refuses, and the
// bytes a tls.Conn held that the Conn must go on with.

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// captureConn keeps what its tls.Conn writes, once capturing, instead of
// sending it: a test then sends it at once.
type captureConn struct {
	net.Conn
	mu        sync.Mutex
	capturing bool
	buf       bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.capturing {
		defer c.mu.Unlock()
		return c.buf.Write(p)
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *captureConn) capture() { c.mu.Lock(); c.capturing = true; c.mu.Unlock() }

// take stops capturing and returns what was kept.
func (c *captureConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.capturing = false
	b := append([]byte(nil), c.buf.Bytes()...)
	c.buf.Reset()
	return b
}

// gatherConn hands its tls.Conn, once set to, exactly want bytes of the
// socket, as few reads as its buffer allows (so that crypto/tls holds
// records it read and did not decrypt), then "no bytes yet".
type gatherConn struct {
	net.Conn
	mu   sync.Mutex
	want int
	stop bool
}

func (g *gatherConn) gather(n int) { g.mu.Lock(); g.want, g.stop = n, true; g.mu.Unlock() }

func (g *gatherConn) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.want > 0 {
		n, err := io.ReadFull(g.Conn, p[:min(len(p), g.want)])
		g.want -= n
		return n, err
	}
	if g.stop {
		return 0, errNoBytes
	}
	return g.Conn.Read(p)
}

// handshaken is a crypto/tls connection over loopback TCP, handshook.
type handshaken struct {
	client *tls.Conn
	cw     *captureConn // the client's transport
	server *tls.Conn
	sr     *gatherConn // the server's transport
	keylog bytes.Buffer
}

func handshake(t *testing.T, version uint16) *handshaken {
	t.Helper()
	cert, pool := testCert(t)
	a, b := tcpPair(t)
	h := &handshaken{cw: &captureConn{Conn: a}, sr: &gatherConn{Conn: b}}
	h.client = tls.Client(h.cw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: version, MaxVersion: version,
		KeyLogWriter: &h.keylog, ClientSessionCache: tls.NewLRUClientSessionCache(1)})
	h.server = tls.Server(h.sr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	done := make(chan error, 1)
	go func() { done <- h.client.Handshake() }()
	if err := h.server.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return h
}

// TestExportPinsCryptoTLS pins what Export reads of crypto/tls: the
// fields and their types, and, on a real TLS 1.3 connection, that it reads
// the traffic secrets of the key log and the sequence numbers of the
// records that went by. A crypto/tls that changes them fails here first.
func TestExportPinsCryptoTLS(t *testing.T) {
	fields := func(typ reflect.Type, want map[string]string) {
		t.Helper()
		for name, ty := range want {
			f, ok := typ.FieldByName(name)
			if !ok {
				t.Errorf("%s has no field %s", typ, name)
				continue
			}
			if got := f.Type.String(); got != ty {
				t.Errorf("%s.%s is a %s, want %s", typ, name, got, ty)
			}
		}
	}
	conn := reflect.TypeFor[tls.Conn]()
	fields(conn, map[string]string{"in": "tls.halfConn", "out": "tls.halfConn", "buffering": "bool", "sendBuf": "[]uint8",
		"closeNotifySent": "bool", "hand": "bytes.Buffer", "rawInput": "bytes.Buffer", "input": "bytes.Reader"})
	if f, ok := conn.FieldByName("in"); ok {
		fields(f.Type, map[string]string{"err": "error", "seq": "[8]uint8", "trafficSecret": "[]uint8"})
	}
	fields(reflect.TypeFor[bytes.Buffer](), map[string]string{"buf": "[]uint8", "off": "int"})
	fields(reflect.TypeFor[bytes.Reader](), map[string]string{"s": "[]uint8", "i": "int64"})

	h := handshake(t, tls.VersionTLS13)
	if _, err := h.client.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	expectRead(t, h.server, "one\ntwo\n")
	st, raw, plain, err := Export(h.server)
	if err != nil {
		t.Fatalf("Export of a plain TLS 1.3 connection: %v", err)
	}
	clientSecret, serverSecret := keyLogSecrets(t, h.keylog.String())
	if st.Suite != h.client.ConnectionState().CipherSuite || !bytes.Equal(st.ClientSecret, clientSecret) || !bytes.Equal(st.ServerSecret, serverSecret) {
		t.Errorf("state %#04x %x %x, want %#04x and the key log's %x %x", st.Suite, st.ClientSecret, st.ServerSecret,
			h.client.ConnectionState().CipherSuite, clientSecret, serverSecret)
	}
	// Two records from the client; one session ticket from the server.
	if st.ClientSeq != 2 || st.ServerSeq != 1 {
		t.Errorf("sequence numbers %d %d, want 2 1", st.ClientSeq, st.ServerSeq)
	}
	if len(raw) != 0 || len(plain) != 0 {
		t.Errorf("raw %x, plain %q; want none", raw, plain)
	}
	// The secrets are copies: the state is the caller's.
	st.ClientSecret[0] ^= 1
	if st2, _, _, err := Export(h.server); err != nil || bytes.Equal(st2.ClientSecret, st.ClientSecret) {
		t.Errorf("a second Export: %v, or it shares the first's secret", err)
	}
}

// TestExportRefuses: what cannot go on elsewhere, with ErrNotExportable.
func TestExportRefuses(t *testing.T) {
	notExportable := func(t *testing.T, tc *tls.Conn, why string) {
		t.Helper()
		st, raw, plain, err := Export(tc)
		if !errors.Is(err, ErrNotExportable) || st != nil || raw != nil || plain != nil || !strings.HasSuffix(err.Error(), ": "+why) {
			t.Fatalf("Export: %v, %v; want ErrNotExportable: %s", st, err, why)
		}
	}
	t.Run("TLS 1.2", func(t *testing.T) {
		h := handshake(t, tls.VersionTLS12)
		notExportable(t, h.server, "TLS 1.2")
	})
	t.Run("before the handshake", func(t *testing.T) {
		cert, _ := testCert(t)
		a, _ := net.Pipe()
		defer a.Close()
		notExportable(t, tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}}), "handshake not complete")
	})
	t.Run("after CloseWrite", func(t *testing.T) {
		h := handshake(t, tls.VersionTLS13)
		if err := h.server.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		notExportable(t, h.server, "closed for writing")
	})
	t.Run("after the client's close_notify", func(t *testing.T) {
		h := handshake(t, tls.VersionTLS13)
		_ = h.client.CloseWrite()
		if _, err := h.server.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read: %v", err)
		}
		notExportable(t, h.server, "the connection failed")
	})
	t.Run("half a KeyUpdate read", func(t *testing.T) {
		h := handshake(t, tls.VersionTLS13)
		clientSecret, _ := keyLogSecrets(t, h.keylog.String())
		w := newTKeys(t, h.client.ConnectionState().CipherSuite, clientSecret, 0)
		rec := w.seal(22, []byte{24, 0}, 0)
		h.sr.gather(len(rec))
		if _, err := h.cw.Write(rec); err != nil {
			t.Fatal(err)
		}
		if _, err := h.server.Read(make([]byte, 1)); err != errNoBytes {
			t.Fatalf("read: %v, want the transport's temporary error", err)
		}
		notExportable(t, h.server, "a post-handshake message half read")
	})
}

// TestExportRawAndPlain: the client pipelines records; the server's
// tls.Conn read them all from the socket (the last one maybe in part) and
// decrypted only the first, of which it returned a line. Export hands the
// rest of the first record (plain) and the undecrypted bytes (raw), and
// New goes on with them, then with the socket.
func TestExportRawAndPlain(t *testing.T) {
	for _, tc := range []struct {
		first string
		tail  int // bytes of the last record left in the socket
	}{{"line\nrest of the first|", 0}, {"line\n", 0}, {"line\nrest|", 9}, {"line\n", 1}, {"line\n", 5 + 6 + 16}} {
		t.Run(fmt.Sprintf("%q tail %d", tc.first, tc.tail), func(t *testing.T) {
			h := handshake(t, tls.VersionTLS13)
			h.cw.capture()
			for _, s := range []string{tc.first, "second|", "third|"} {
				if _, err := h.client.Write([]byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			stream := h.cw.take()
			first, err := readRec(bytes.NewReader(stream))
			if err != nil {
				t.Fatal(err)
			}
			h.sr.gather(len(stream) - tc.tail)
			if _, err := h.cw.Write(stream); err != nil {
				t.Fatal(err)
			}
			// Byte by byte: crypto/tls keeps the rest of the record.
			var line []byte
			for !bytes.HasSuffix(line, []byte("\n")) {
				var b [1]byte
				if _, err := h.server.Read(b[:]); err != nil {
					t.Fatal(err)
				}
				line = append(line, b[0])
			}
			st, raw, plain, err := Export(h.server)
			if err != nil {
				t.Fatal(err)
			}
			if want := stream[len(first) : len(stream)-tc.tail]; !bytes.Equal(raw, want) {
				t.Fatalf("raw: %d bytes, want the %d after the first record", len(raw), len(want))
			}
			if want := tc.first[len(line):]; string(plain) != want {
				t.Fatalf("plain %q, want %q", plain, want)
			}
			if st.ClientSeq != 1 {
				t.Fatalf("client sequence %d, want 1", st.ClientSeq)
			}
			c, err := New(h.sr.Conn, st, raw, plain)
			if err != nil {
				t.Fatal(err)
			}
			expectRead(t, c, tc.first[len(line):]+"second|third|")
			if _, err := h.client.Write([]byte("fourth|")); err != nil {
				t.Fatal(err)
			}
			expectRead(t, c, "fourth|")
			if _, err := c.Write([]byte("reply")); err != nil {
				t.Fatal(err)
			}
			_ = h.client.SetDeadline(time.Now().Add(bound))
			expectRead(t, h.client, "reply")
		})
	}
}

// TestExportAfterKeyUpdate: a client's KeyUpdate that crypto/tls handled
// before the export: the state has the client's next secret (and the
// server's next one, when the client asked for it), from sequence 0.
func TestExportAfterKeyUpdate(t *testing.T) {
	for _, requested := range []bool{false, true} {
		t.Run(fmt.Sprint("requested=", requested), func(t *testing.T) {
			h := handshake(t, tls.VersionTLS13)
			clientSecret, serverSecret := keyLogSecrets(t, h.keylog.String())
			suite := h.client.ConnectionState().CipherSuite
			p := &peer{t: t, nc: h.cw.Conn, w: newTKeys(t, suite, clientSecret, 0)}
			stream := bytes.Join([][]byte{p.data("before\n"), p.keyUpdate(requested), p.data("after\n")}, nil)
			h.sr.gather(len(stream))
			p.send(stream)
			expectRead(t, h.server, "before\nafter\n")
			st, raw, plain, err := Export(h.server)
			if err != nil {
				t.Fatal(err)
			}
			next := newTKeys(t, suite, clientSecret, 0)
			next.next()
			if !bytes.Equal(st.ClientSecret, next.secret) || st.ClientSeq != 1 {
				t.Fatalf("client secret %x seq %d, want the next secret %x seq 1", st.ClientSecret, st.ClientSeq, next.secret)
			}
			wantServer, wantSeq := serverSecret, uint64(1)
			if requested {
				k := newTKeys(t, suite, serverSecret, 0)
				k.next()
				wantServer, wantSeq = k.secret, 0
			}
			if !bytes.Equal(st.ServerSecret, wantServer) || st.ServerSeq != wantSeq {
				t.Fatalf("server secret %x seq %d, want %x seq %d", st.ServerSecret, st.ServerSeq, wantServer, wantSeq)
			}
			c, err := New(h.sr.Conn, st, raw, plain)
			if err != nil {
				t.Fatal(err)
			}
			p.send(p.data("on the conn|"))
			expectRead(t, c, "on the conn|")
			if _, err := c.Write([]byte("reply")); err != nil {
				t.Fatal(err)
			}
			_ = h.client.SetDeadline(time.Now().Add(bound))
			expectRead(t, h.client, "reply")
		})
	}
}
