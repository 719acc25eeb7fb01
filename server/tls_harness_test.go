package server

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// enableTLS gives each shard a tls:// listener of its own (listen index
// 2), with a self-signed certificate for 127.0.0.1. Call it before the
// shards start.
func (hs *harness) enableTLS() {
	t := hs.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "subordinate test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	hs.roots = x509.NewCertPool()
	hs.roots.AddCert(cert)
	hs.cfg.TLS.Certs = []CertFile{{Cert: certFile, Key: keyFile}}
	for i := range 2 {
		ln := listenTCP(t)
		hs.ownTLS[i] = ln.Addr().String()
		hs.lnFDs[i] = append(hs.lnFDs[i], dupListener(t, ln))
		ln.Close()
	}
}

// dialTLS connects over TLS and sends the preamble of key and early in
// one write.
func (hs *harness) dialTLS(t *testing.T, addr, key string, early []byte) *client {
	t.Helper()
	d := &net.Dialer{Timeout: bound}
	tc, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: hs.roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	_ = tc.SetDeadline(time.Now().Add(bound))
	if _, err := tc.Write(append([]byte(key+"\n"), early...)); err != nil {
		t.Fatal(err)
	}
	return &client{Conn: tc, r: bufio.NewReader(tc)}
}
