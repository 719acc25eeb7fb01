package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// certStore holds the TLS configuration a worker's new handshakes use,
// and swaps it when the master asks for a reload (SIGHUP): established
// connections keep the configuration they were made with, new
// handshakes take the newest one (tls.Config.GetConfigForClient reads an
// atomic pointer: no lock on the handshake path). A reload that cannot
// read a file, or finds a certificate that does not match its key, keeps
// the configuration in use and counts a failure.
type certStore struct {
	spec TLSConfig
	// base is the configuration built at start; a reload clones it with
	// the files read again (ALPN and the minimum version are flags, not
	// files, and do not change).
	base *tls.Config
	cur  atomic.Pointer[tls.Config]
	// server is what tls.Server is given: it only points at cur.
	server *tls.Config

	// reloads counts the reloads that took effect; reloadFailures those
	// refused (the old certificates stay). Read them from any goroutine:
	// metrics export them (subordinate_tls_reloads_total,
	// subordinate_tls_reload_failures_total).
	reloads        atomic.Uint64
	reloadFailures atomic.Uint64

	// ticketKeys are the master's session ticket keys (none until it
	// sends them), set on every configuration the store serves, those of
	// later reloads included (tls_tickets.go). ticketMu orders a reload
	// and a rotation.
	ticketMu   sync.Mutex
	ticketKeys [][ticketKeySize]byte
}

// newCertStore builds the configuration of spec from its files.
func newCertStore(spec TLSConfig) (*certStore, error) {
	base, err := spec.Build()
	if err != nil {
		return nil, err
	}
	s := &certStore{spec: spec, base: base}
	s.cur.Store(base)
	s.server = &tls.Config{
		// Used only if GetConfigForClient were not: the same as base.
		MinVersion: base.MinVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load(), nil
		},
	}
	return s, nil
}

// certReloadError is a reload refused because of one file (or a
// certificate and key that do not belong together).
type certReloadError struct {
	File string
	Err  error
}

func (e *certReloadError) Error() string { return e.File + ": " + e.Err.Error() }
func (e *certReloadError) Unwrap() error { return e.Err }

// reload reads the certificate, key and client CA files again and, if
// they are all good, makes new handshakes use them. On error nothing
// changes; the error is a *certReloadError naming the file.
func (s *certStore) reload() error {
	next, err := s.load()
	if err != nil {
		s.reloadFailures.Add(1)
		return err
	}
	s.ticketMu.Lock()
	defer s.ticketMu.Unlock()
	if len(s.ticketKeys) > 0 {
		next.SetSessionTicketKeys(s.ticketKeys) // sessions resume across a reload
	}
	s.cur.Store(next)
	s.reloads.Add(1)
	return nil
}

func (s *certStore) load() (*tls.Config, error) {
	next := s.base.Clone()
	next.Certificates = nil
	for _, cf := range s.spec.Certs {
		certPEM, err := os.ReadFile(cf.Cert)
		if err != nil {
			return nil, &certReloadError{File: cf.Cert, Err: err}
		}
		keyPEM, err := os.ReadFile(cf.Key)
		if err != nil {
			return nil, &certReloadError{File: cf.Key, Err: err}
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, &certReloadError{File: pairFile(cf, err), Err: err}
		}
		next.Certificates = append(next.Certificates, cert)
	}
	if s.spec.ClientCA != "" {
		pem, err := os.ReadFile(s.spec.ClientCA)
		if err != nil {
			return nil, &certReloadError{File: s.spec.ClientCA, Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &certReloadError{File: s.spec.ClientCA, Err: errors.New("no PEM certificate in it")}
		}
		next.ClientCAs = pool
	}
	return next, nil
}

// pairFile names the file tls.X509KeyPair found wrong: the certificate,
// the key, or both when they do not match.
func pairFile(cf CertFile, err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "does not match"):
		return fmt.Sprintf("%s and %s", cf.Cert, cf.Key)
	case strings.Contains(msg, "certificate input"), strings.Contains(msg, "x509:"):
		return cf.Cert
	}
	return cf.Key
}

// ReloadCerts re-reads the TLS files (the master's reload message, sent
// on SIGHUP): new handshakes use them, established connections keep
// theirs. A file that cannot be read or does not fit keeps the old ones,
// and is logged and counted; nothing else happens to the shard.
func (r *routed) ReloadCerts() {
	if r.certs == nil {
		r.log.Info("reload: no tls:// listener; nothing to reload")
		return
	}
	if err := r.certs.reload(); err != nil {
		file := ""
		var re *certReloadError
		if errors.As(err, &re) {
			file, err = re.File, re.Err
		}
		r.log.Error("TLS reload failed; new handshakes keep the certificates in use",
			"file", file, "err", err, "failures", r.certs.reloadFailures.Load())
		return
	}
	r.log.Info("TLS certificates reloaded", "certs", len(r.certs.spec.Certs), "client_ca", r.certs.spec.ClientCA != "")
}
