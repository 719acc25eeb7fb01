package server

import (
	"bytes"
	"crypto/tls"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/subordinate/subordinate/internal/proctest"
)

// TestCertStoreReload: a reload with good files switches what new
// handshakes get; an unreadable file, a file that is not PEM and a
// certificate that does not match its key are refused, each naming its
// file, counted, and leave the certificate in use as it was.
func TestCertStoreReload(t *testing.T) {
	certA, keyA, _ := proctest.SelfSigned(t, "127.0.0.1")
	certB, keyB, _ := proctest.SelfSigned(t, "127.0.0.1")
	// The store reads the files at certA/keyA; B's are copied over them.
	s, err := newCertStore(TLSConfig{Certs: []CertFile{{Cert: certA, Key: keyA}}})
	if err != nil {
		t.Fatal(err)
	}
	served := func() []byte {
		cfg, err := s.server.GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil || len(cfg.Certificates) != 1 {
			t.Fatalf("GetConfigForClient: %v, %d certificates", err, len(cfg.Certificates))
		}
		return cfg.Certificates[0].Certificate[0]
	}
	derOf := func(certFile, keyFile string) []byte {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate[0]
	}
	a, b := derOf(certA, keyA), derOf(certB, keyB)
	if !bytes.Equal(served(), a) {
		t.Fatal("the store does not serve the certificate it was built with")
	}
	origKeyA, _ := os.ReadFile(keyA)
	cp := func(from, to string) {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cp(certB, certA)
	cp(keyB, keyA)
	if err := s.reload(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served(), b) || s.reloads.Load() != 1 {
		t.Fatalf("after a good reload: serving the new certificate %v, reloads %d", bytes.Equal(served(), b), s.reloads.Load())
	}

	bad := []struct {
		name  string
		spoil func()
		file  string
	}{
		{"not PEM", func() { os.WriteFile(certA, []byte("garbage"), 0o600) }, certA},
		{"unreadable", func() { os.Remove(keyA) }, keyA},
		{"mismatched", func() { cp(certB, certA); os.WriteFile(keyA, origKeyA, 0o600) }, certA + " and " + keyA},
	}
	for i, c := range bad {
		c.spoil()
		err := s.reload()
		var re *certReloadError
		if !errors.As(err, &re) || re.File != c.file {
			t.Fatalf("%s: reload error %v, want one naming %s", c.name, err, c.file)
		}
		if !strings.Contains(err.Error(), c.file) {
			t.Fatalf("%s: %q does not name the file", c.name, err)
		}
		if !bytes.Equal(served(), b) {
			t.Fatalf("%s: a refused reload changed the certificate served", c.name)
		}
		if got := s.reloadFailures.Load(); got != uint64(i+1) {
			t.Fatalf("%s: %d failures counted, want %d", c.name, got, i+1)
		}
	}
}
