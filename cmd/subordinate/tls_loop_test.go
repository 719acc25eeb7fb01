package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSLoopOneWorker: with one worker every TLS connection is local and
// served on the worker's event loop after its handshake: mutual TLS with
// the client's subject, SNI, ALPN, TLS 1.2 and 1.3, a 3 MiB echo written
// while it is read, and half-close (close_notify) ending it.
func TestTLSLoopOneWorker(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	_, _, clientCert := p.issue(t, "carol", true)
	aCert, aKey, _ := p.issue(t, "a.example", false, "a.example")
	bCert, bKey, _ := p.issue(t, "b.example", false, "b.example")
	s := serve(t, 1, "--listen", "tls://127.0.0.1:0", "--cert", aCert, "--key", aKey, "--cert", bCert, "--key", bKey,
		"--client-ca", filepath.Join(p.dir, "ca.pem"), "--alpn", "sub/1")
	for i, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		name := []string{"a.example", "b.example"}[i]
		cfg := &tls.Config{RootCAs: p.pool, ServerName: name, NextProtos: []string{"sub/1"},
			Certificates: []tls.Certificate{clientCert}, MinVersion: v, MaxVersion: v}
		c, r, line := tlsDial(t, s.addr, cfg, fmt.Sprintf("loop-%d", i))
		if got := c.ConnectionState().PeerCertificates[0].Subject.CommonName; got != name {
			t.Fatalf("SNI %s: served the certificate of %s", name, got)
		}
		for _, want := range []string{"tls=" + tls.VersionName(v), fmt.Sprintf(`sni=%q`, name), `alpn="sub/1"`, `peer="CN=carol,O=Subordinate tests"`} {
			if !strings.Contains(line, want) {
				t.Fatalf("whoami %q lacks %s", line, want)
			}
		}
		msg := bytes.Repeat([]byte(fmt.Sprintf("loop %d ", i)), (3<<20)/7)
		go func() {
			_, _ = c.Write(msg)
			_ = c.CloseWrite()
		}()
		back, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(back, msg) {
			t.Fatalf("%s: echo of %d bytes: %d back, %v", tls.VersionName(v), len(msg), len(back), err)
		}
		c.Close()
	}
	s.stop(t)
}
