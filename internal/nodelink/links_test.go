package nodelink

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/cluster"
)

// bound is how long a test waits for what must happen.
const bound = 10 * time.Second

// ca is a test certificate authority.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newCA(t *testing.T, name string) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), name+".pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &ca{cert: cert, key: key, file: file}
}

// node issues a node certificate for 127.0.0.1, for both ends of a link,
// and returns its files.
func (c *ca) node(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// logBuf collects a node's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testNode is one node of a test cluster.
type testNode struct {
	links *Links
	log   *logBuf
}

// startNode starts node self of addrs with a certificate of c and the
// given worker count; each stream it accepts gets one line back:
// "<self> from <peer>: <the line read>".
func startNode(t *testing.T, c *ca, caFile string, addrs []string, self, workers int, ln net.Listener) *testNode {
	t.Helper()
	certFile, keyFile := c.node(t, fmt.Sprintf("node-%d", self))
	cfg, err := TLSConfig(certFile, keyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", addrs[self]); err != nil {
			t.Fatal(err)
		}
	}
	lb := &logBuf{}
	l, err := Start(Config{
		Members: cluster.Members{Nodes: addrs, Self: self}, Workers: workers, TLS: cfg, Listener: ln,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(lb, nil)),
		Accept: func(peer int, s *Stream) {
			defer s.Close()
			line, err := bufio.NewReader(s).ReadString('\n')
			if err == nil {
				fmt.Fprintf(s, "%d from %d: %s", self, peer, line)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{links: l, log: lb}
}

// listeners makes n loopback listeners and returns them with their
// addresses.
func listeners(t *testing.T, n int) ([]net.Listener, []string) {
	t.Helper()
	lns := make([]net.Listener, n)
	addrs := make([]string, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], addrs[i] = ln, ln.Addr().String()
	}
	return lns, addrs
}

// ask opens a stream from n to peer and returns the peer's answer.
func ask(t *testing.T, n *testNode, peer int, line string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	s, err := n.links.Open(ctx, peer)
	if err != nil {
		return "", err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(bound))
	if _, err := fmt.Fprintf(s, "%s\n", line); err != nil {
		return "", err
	}
	return bufio.NewReader(s).ReadString('\n')
}

// TestLinks: three nodes with certificates from the cluster's CA link
// every pair, streams go both ways and say who is at each end, a node
// restarted on its address is linked again, and closing leaves no
// goroutine behind.
func TestLinks(t *testing.T) {
	before := runtime.NumGoroutine()
	c := newCA(t, "cluster")
	lns, addrs := listeners(t, 3)
	nodes := make([]*testNode, 3)
	for i := range nodes {
		nodes[i] = startNode(t, c, c.file, addrs, i, 2, lns[i])
	}
	for i, n := range nodes {
		for j := range nodes {
			if i == j {
				continue
			}
			got, err := ask(t, n, j, "hello")
			if want := fmt.Sprintf("%d from %d: hello\n", j, i); err != nil || got != want {
				t.Fatalf("node %d to %d: %q, %v; want %q", i, j, got, err, want)
			}
		}
	}

	// Node 1 goes away: node 0 cannot reach it, node 2 still can reach 0.
	if err := nodes[1].links.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	for nodes[0].links.Up(1) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := nodes[0].links.Open(ctx, 1); err == nil {
		t.Error("a stream opened to a node that is down")
	}
	cancel()
	if got, err := ask(t, nodes[2], 0, "still"); err != nil || got != "0 from 2: still\n" {
		t.Errorf("node 2 to 0 with node 1 down: %q, %v", got, err)
	}
	// It comes back on its address: both links are made again.
	nodes[1] = startNode(t, c, c.file, addrs, 1, 2, nil)
	for _, from := range []int{0, 2} {
		if got, err := ask(t, nodes[from], 1, "again"); err != nil || got != fmt.Sprintf("1 from %d: again\n", from) {
			t.Errorf("node %d to the restarted node 1: %q, %v", from, got, err)
		}
	}

	for _, n := range nodes {
		_ = n.links.Close()
	}
	deadline := time.Now().Add(bound)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestLinksRefused: a node whose certificate another CA signed, and one
// that runs another number of workers, are never linked, and the
// operator's log says why.
func TestLinksRefused(t *testing.T) {
	c, other := newCA(t, "cluster"), newCA(t, "other")
	for _, tc := range []struct {
		name      string
		ca        *ca
		workers   int
		logged    string // in node 0's or node 1's log
		loggedBy0 bool
	}{
		{"another CA", other, 2, "certificate", false},
		{"other workers", c, 3, "runs 2 workers, this node 3", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lns, addrs := listeners(t, 2)
			n0 := startNode(t, c, c.file, addrs, 0, 2, lns[0])
			defer n0.links.Close()
			n1 := startNode(t, tc.ca, c.file, addrs, 1, tc.workers, lns[1])
			defer n1.links.Close()
			deadline := time.Now().Add(bound)
			for !strings.Contains(n0.log.String()+n1.log.String(), tc.logged) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if logs := n0.log.String() + n1.log.String(); !strings.Contains(logs, tc.logged) {
				t.Fatalf("no log line with %q:\n%s", tc.logged, logs)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if _, err := n0.links.Open(ctx, 1); err == nil {
				t.Error("node 0 opened a stream to a refused node")
			}
			if n1.links.Up(0) || n0.links.Up(1) {
				t.Error("a refused link is up")
			}
		})
	}
}
