package server

import (
	"bufio"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/proctest"
)

// enableTLS gives each shard a tls:// listener of its own (listen index
// 2), with a self-signed certificate for 127.0.0.1. Call it before the
// shards start.
func (hs *harness) enableTLS() {
	t := hs.t
	t.Helper()
	certFile, keyFile, roots := proctest.SelfSigned(t, "127.0.0.1")
	hs.roots = roots
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
