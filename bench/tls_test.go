package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := startEcho(t, "tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil)
	for _, mode := range []Mode{PingPong, Pipeline, Connect} {
		t.Run(mode.String(), func(t *testing.T) {
			// The server name comes from Addr: the certificate is for 127.0.0.1.
			res := runOK(t, Config{Addr: srv.addr(), Mode: mode, Conns: 2, Requests: 200,
				TLS: &tls.Config{RootCAs: pool}, Linger0: mode == Connect})
			checkClean(t, res, 200)
		})
	}
	t.Run("untrusted", func(t *testing.T) {
		res := runOK(t, Config{Addr: srv.addr(), Conns: 1, Duration: 2 * time.Second, TLS: &tls.Config{}})
		if res.Requests != 0 || res.Errors[KindTLS] == 0 {
			t.Errorf("requests %d, errors %v: want tls errors", res.Requests, res.Errors)
		}
	})
}
