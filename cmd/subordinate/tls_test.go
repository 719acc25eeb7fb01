package main

// TLS termination with the real binary: SNI, ALPN, mutual TLS, the TLS
// summary on local and forwarded connections, and bad clients.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
)

// pki is a test CA with the files a TLS server needs.
type pki struct {
	dir  string
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, key: key, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue makes a certificate signed by the CA and returns its PEM files
// and the tls.Certificate.
func (p *pki) issue(t *testing.T, cn string, client bool, dns ...string) (certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Subordinate tests"}},
		DNSNames:     dns,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile = p.write(t, cn+".pem", "CERTIFICATE", der)
	keyFile = p.write(t, cn+".key", "PRIVATE KEY", kder)
	cert, err = tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// tlsServe starts a server with a tls:// listener and two certificates.
func tlsServe(t *testing.T, p *pki, extra ...string) *master {
	t.Helper()
	aCert, aKey, _ := p.issue(t, "a.example", false, "a.example")
	bCert, bKey, _ := p.issue(t, "b.example", false, "b.example")
	args := append([]string{"--listen", "tls://127.0.0.1:0",
		"--cert", aCert, "--key", aKey, "--cert", bCert, "--key", bKey}, extra...)
	return serve(t, 3, args...)
}

// tlsDial connects, sends the key line and returns the whoami reply.
func tlsDial(t *testing.T, addr string, cfg *tls.Config, key string) (*tls.Conn, *bufio.Reader, string) {
	t.Helper()
	d := &net.Dialer{Timeout: soon}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS dial (%s): %v", cfg.ServerName, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(soon))
	fmt.Fprintf(c, "%s\n", key)
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	return c, r, line
}

// TestTLSFront: SNI picks the certificate, ALPN is negotiated, and the
// handler sees the TLS summary on local and forwarded connections alike;
// the echo after it is intact, and half-close works through TLS;
// forwarded connections handed off with their TLS 1.3 session (relayed=
// false; a TLS 1.2 one is spliced), spliced or relayed over the mesh
// (--forward-tls), as the worker logs.
func TestTLSFront(t *testing.T) {
	t.Parallel()
	for _, ft := range []struct{ flag, how string }{
		{"handoff", "hand-off with the TLS 1.3 session, else splice"},
		{"splice", "splice"},
		{"relay", "relay over the mesh"},
	} {
		t.Run(ft.flag, func(t *testing.T) {
			t.Parallel()
			testTLSFront(t, ft.flag, ft.how)
		})
	}
}

func testTLSFront(t *testing.T, forwardTLS, how string) {
	p := newPKI(t)
	s := tlsServe(t, p, "--alpn", "sub/1,h2", "--forward-tls", forwardTLS)
	for i := 0; i < 3; i++ {
		s.WaitLog(soon, 1, func(l proctest.Line) bool {
			return l.Is("forwarded TLS connections", "shard", i, "how", how)
		})
	}
	local, forwarded, handed := 0, 0, 0
	for i := 0; i < 32; i++ {
		name := []string{"a.example", "b.example"}[i%2]
		version, vname := uint16(tls.VersionTLS13), "TLS 1.3"
		if i%4 == 3 {
			version, vname = tls.VersionTLS12, "TLS 1.2"
		}
		c, r, line := tlsDial(t, s.addr, &tls.Config{RootCAs: p.pool, ServerName: name, NextProtos: []string{"sub/1"}, MaxVersion: version}, fmt.Sprintf("tls-%d", i))
		if got := c.ConnectionState().PeerCertificates[0].Subject.CommonName; got != name {
			t.Fatalf("SNI %s: served the certificate of %s", name, got)
		}
		for _, want := range []string{`tls=` + vname, fmt.Sprintf(`sni=%q`, name), `alpn="sub/1"`, `peer=""`} {
			if !strings.Contains(line, want) {
				t.Fatalf("whoami %q lacks %s", line, want)
			}
		}
		var shard, via int
		fmt.Sscanf(line[strings.Index(line, "shard="):], "shard=%d", &shard)
		fmt.Sscanf(line[strings.Index(line, "via="):], "via=%d", &via)
		// A forwarded TLS connection is relayed (its TLS state stays in
		// the accepting worker), unless handed off with its TLS 1.3
		// session.
		relayed := relayedRE.MatchString(strings.TrimSuffix(line, "\n"))
		if forwardTLS == "handoff" && version == tls.VersionTLS13 {
			checkRelayed(t, s.mode, false, shard, via, relayed)
		} else {
			checkRelayed(t, s.mode, true, shard, via, relayed)
		}
		switch {
		case shard == via:
			local++
		case !relayed:
			handed++
		default:
			forwarded++
		}
		msg := strings.Repeat(fmt.Sprintf("payload %d ", i), 5000)
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(r)
		if err != nil || string(back) != msg {
			t.Fatalf("echo through TLS: %d of %d bytes, %v", len(back), len(msg), err)
		}
	}
	if local == 0 || forwarded == 0 || (forwardTLS == "handoff" && handed == 0) {
		t.Fatalf("local %d, handed off %d, relayed %d: every path must be exercised", local, handed, forwarded)
	}
	s.stop(t)
}

// TestTLSMutual: with --client-ca, a client certificate from the CA is
// accepted and its subject reaches the handler; no certificate, or one
// from another CA, is refused at the handshake.
func TestTLSMutual(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	_, _, clientCert := p.issue(t, "alice", true)
	s := tlsServe(t, p, "--client-ca", filepath.Join(p.dir, "ca.pem"), "--tls-min-version", "1.2")
	mc, _, line := tlsDial(t, s.addr, &tls.Config{RootCAs: p.pool, ServerName: "a.example", Certificates: []tls.Certificate{clientCert}, MaxVersion: tls.VersionTLS12}, "mtls")
	mc.Close()
	if !strings.Contains(line, `peer="CN=alice,O=Subordinate tests"`) || !strings.Contains(line, "tls=TLS 1.2") {
		t.Fatalf("whoami %q: want the client's subject and TLS 1.2", line)
	}
	// TLS 1.3: the subject reaches the owner of a connection handed off
	// with its session too.
	handed := 0
	for i := 0; i < 12; i++ {
		c, _, line := tlsDial(t, s.addr, &tls.Config{RootCAs: p.pool, ServerName: "a.example", Certificates: []tls.Certificate{clientCert}}, fmt.Sprintf("mtls-%d", i))
		c.Close()
		if !strings.Contains(line, `peer="CN=alice,O=Subordinate tests"`) || !strings.Contains(line, "tls=TLS 1.3") {
			t.Fatalf("whoami %q: want the client's subject and TLS 1.3", line)
		}
		var shard, via int
		fmt.Sscanf(line[strings.Index(line, "shard="):], "shard=%d", &shard)
		fmt.Sscanf(line[strings.Index(line, "via="):], "via=%d", &via)
		if shard != via && !relayedRE.MatchString(strings.TrimSuffix(line, "\n")) {
			handed++
		}
	}
	if handed == 0 {
		t.Fatal("no mutual-TLS connection was handed off with its session")
	}
	other := newPKI(t)
	_, _, stranger := other.issue(t, "mallory", true)
	for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "another CA": {stranger}} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: soon}, "tcp", s.addr, &tls.Config{RootCAs: p.pool, ServerName: "a.example", Certificates: certs})
		if err == nil {
			// TLS 1.3 reports the refusal on the first read.
			c.SetDeadline(time.Now().Add(soon))
			fmt.Fprintf(c, "k\n")
			_, err = bufio.NewReader(c).ReadString('\n')
			c.Close()
		}
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Msg() == "TLS handshake failed" })
	s.stop(t)
}

// TestTLSBadClients: plaintext on the TLS port and a handshake that
// stalls are logged and closed; other connections are not disturbed.
func TestTLSBadClients(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	s := tlsServe(t, p, "--preamble-timeout", "300ms")
	good, r, _ := tlsDial(t, s.addr, &tls.Config{RootCAs: p.pool, ServerName: "a.example"}, "steady")

	plain, err := net.DialTimeout("tcp", s.addr, soon)
	if err != nil {
		t.Fatal(err)
	}
	plain.SetDeadline(time.Now().Add(soon))
	fmt.Fprintf(plain, "GET / HTTP/1.0\r\n\r\n")
	if _, err := io.ReadAll(plain); err != nil {
		t.Fatalf("plaintext: %v; want the server to close", err)
	}
	plain.Close()
	s.WaitLog(soon, 1, func(l proctest.Line) bool {
		return l.Msg() == "TLS handshake failed" && strings.Contains(l.Str("err"), "not TLS")
	})

	stall, err := net.DialTimeout("tcp", s.addr, soon)
	if err != nil {
		t.Fatal(err)
	}
	stall.SetDeadline(time.Now().Add(soon))
	if _, err := io.ReadAll(stall); err != nil {
		t.Fatalf("stalled handshake: %v; want the server to close", err)
	}
	stall.Close()
	s.WaitLog(soon, 1, func(l proctest.Line) bool {
		return l.Msg() == "TLS handshake failed" && l.Str("err") == "handshake timeout"
	})

	good.SetDeadline(time.Now().Add(soon))
	fmt.Fprintf(good, "still fine\n")
	if line, err := r.ReadString('\n'); err != nil || line != "still fine\n" {
		t.Fatalf("the good connection: %q, %v", line, err)
	}
	good.Close()
	s.stop(t)
}

// TestTLSAcceptorKilled: SIGKILL of a worker that terminated TLS
// connections for other shards. Handed off with their sessions
// (--forward-tls handoff), they no longer depend on it and go on, under
// their session's keys, at their owners; spliced, they die with it and
// are closed, not left hanging.
func TestTLSAcceptorKilled(t *testing.T) {
	t.Parallel()
	for _, ft := range []string{"handoff", "splice"} {
		t.Run(ft, func(t *testing.T) {
			t.Parallel()
			const workers, victim = 3, 1
			p := newPKI(t)
			s := tlsServe(t, p, "--forward-tls", ft)
			pid := workerPid(t, s.Proc, victim, 1)
			type conn struct {
				c *tls.Conn
				r *bufio.Reader
			}
			var passed []conn
			for n := 0; len(passed) < 4; n++ {
				if n > 2000 {
					t.Fatalf("after %d connections, %d accepted by shard %d for others", n, len(passed), victim)
				}
				c, r, line := tlsDial(t, s.addr, &tls.Config{RootCAs: p.pool, ServerName: "a.example"}, fmt.Sprintf("tls-acceptor-%d", n))
				var shard, via int
				fmt.Sscanf(line[strings.Index(line, "shard="):], "shard=%d", &shard)
				fmt.Sscanf(line[strings.Index(line, "via="):], "via=%d", &via)
				if via != victim || shard == victim {
					c.Close()
					continue
				}
				passed = append(passed, conn{c, r})
			}
			echo := func(c conn, msg string) error {
				c.c.SetDeadline(time.Now().Add(soon))
				if _, err := fmt.Fprintf(c.c, "%s\n", msg); err != nil {
					return err
				}
				got, err := c.r.ReadString('\n')
				if err == nil && got != msg+"\n" {
					err = fmt.Errorf("echo %q, want %q", got, msg)
				}
				return err
			}
			for _, c := range passed {
				if err := echo(c, "before"); err != nil {
					t.Fatal(err)
				}
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("worker died", "shard", victim, "worker_pid", pid) })
			for i, c := range passed {
				err := echo(c, "the acceptor is gone")
				switch {
				case ft == "handoff" && err != nil:
					t.Fatalf("connection %d, handed off with its session: %v", i, err)
				case ft == "splice" && err == nil:
					t.Fatalf("connection %d, spliced by the killed worker, still echoes", i)
				case ft == "splice" && errors.Is(err, os.ErrDeadlineExceeded):
					t.Fatalf("connection %d, spliced by the killed worker, was left hanging", i)
				}
				c.c.Close()
			}
			s.stop(t)
		})
	}
}
