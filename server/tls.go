package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSConfig configures TLS termination on tls:// listeners. The worker
// that accepts a connection terminates its TLS; the key preamble is read
// from the decrypted stream, and the session's summary (TLSInfo) travels
// with a forwarded connection to its owner.
type TLSConfig struct {
	// Certs are the certificate chains and keys to serve, as PEM files.
	// With several, the one whose names match the client's SNI is chosen
	// (crypto/tls does this); the first is the default. Required with a
	// tls:// listener.
	Certs []CertFile `json:"certs,omitempty"`

	// ClientCA is a PEM file of the certificate authorities a client
	// certificate must chain to. When set, every client must present a
	// certificate it verifies (mutual TLS). Default: none asked for.
	ClientCA string `json:"client_ca,omitempty"`

	// ALPN are the application protocols offered, in order of
	// preference; the negotiated one is TLSInfo.ALPN. Default: none.
	ALPN []string `json:"alpn,omitempty"`

	// MinVersion is the oldest TLS version accepted: "1.2" or "1.3".
	// Default (""): 1.2.
	MinVersion string `json:"min_version,omitempty"`
}

// CertFile is a certificate chain and its private key, as PEM files.
type CertFile struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// Build loads the files and returns the server's tls.Config.
func (c *TLSConfig) Build() (*tls.Config, error) {
	if len(c.Certs) == 0 {
		return nil, errors.New("tls: a tls:// listener needs at least one certificate and key (--cert, --key)")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: c.ALPN}
	switch c.MinVersion {
	case "", "1.2":
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("tls: min version %q: want 1.2 or 1.3", c.MinVersion)
	}
	for _, cf := range c.Certs {
		cert, err := tls.LoadX509KeyPair(cf.Cert, cf.Key)
		if err != nil {
			return nil, fmt.Errorf("tls: certificate %s, key %s: %w", cf.Cert, cf.Key, err)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	if c.ClientCA != "" {
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: client CA %s: no PEM certificate in it", c.ClientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// tlsInfo summarises a finished handshake.
func tlsInfo(st tls.ConnectionState) *TLSInfo {
	info := &TLSInfo{Version: st.Version, ServerName: st.ServerName, ALPN: st.NegotiatedProtocol}
	if len(st.PeerCertificates) > 0 {
		info.PeerSubject = st.PeerCertificates[0].Subject.String()
	}
	return info
}
