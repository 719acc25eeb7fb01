//go:build linux

package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// startServers starts every row, each ready to serve when it returns; on
// error the rows started so far are returned for stopping.
func startServers(o options, b *bins, cpus string, threads int) ([]*server, error) {
	var out []*server
	add := func(s *server, argv ...string) error {
		out = append(out, s)
		if _, err := s.launch(cpus, argv...); err != nil {
			return err
		}
		return waitTLS(s.addr, b.pool)
	}
	if o.rows["std"] {
		std := &server{id: "std", name: "Go crypto/tls, goroutine per conn", addr: freeAddr()}
		if err := add(std, b.std, "-addr", std.addr, "-tls-cert", b.cert, "-tls-key", b.key); err != nil {
			return out, err
		}
	}
	for _, id := range []string{"sub1", "subN", "subSNI"} {
		if !o.rows[id] {
			continue
		}
		w, name := 1, "Subordinate, 1 worker"
		switch id {
		case "subN":
			w, name = o.workers, fmt.Sprintf("Subordinate, %d workers", o.workers)
		case "subSNI":
			w, name = o.workers, fmt.Sprintf("Subordinate, %d workers, key from SNI", o.workers)
		}
		s := &server{id: id, name: name, addr: freeAddr()}
		argv := []string{b.sub, "serve", "--listen", "tls://" + s.addr, "--workers", fmt.Sprint(w),
			"--handler", "echo", "--cert", b.cert, "--key", b.key, "--log-level", "warn"}
		if id == "subSNI" {
			// Routed by the ClientHello's server name, the socket goes to
			// its owner before the handshake: nothing is relayed, and the
			// row is what N workers cost with every connection local.
			s.keyFrom = "sni"
			argv = append(argv, "--key-from", "sni")
			out = append(out, s)
			if _, err := s.launch(cpus, argv...); err != nil {
				return out, err
			}
			if err := waitSNI(s.addr, b.pool); err != nil {
				return out, err
			}
			continue
		}
		if err := add(s, argv...); err != nil {
			return out, err
		}
	}
	if b.haproxy == "" {
		return out, nil
	}
	s := &server{id: "haproxy", name: fmt.Sprintf("HAProxy (OpenSSL), %d backends", o.workers), addr: freeAddr()}
	out = append(out, s)
	p := haproxyParams{Addr: s.addr, PEM: filepath.Join(b.dir, "haproxy.pem"), MaxConn: 1000, Threads: threads}
	for i := 0; i < o.workers; i++ {
		addr := freeAddr()
		if _, err := s.launch(cpus, b.gnet, "-addr", addr); err != nil {
			return out, err
		}
		if err := waitPlain(addr); err != nil {
			return out, err
		}
		p.Backends = append(p.Backends, addr)
	}
	cfgPath := filepath.Join(b.dir, "haproxy.cfg")
	f, err := os.Create(cfgPath)
	if err != nil {
		return out, err
	}
	err = renderHAProxyConfig(f, p)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return out, err
	}
	if msg, err := exec.Command(b.haproxy, "-c", "-q", "-f", cfgPath).CombinedOutput(); err != nil {
		return out, fmt.Errorf("haproxy -c: %v: %s", err, msg)
	}
	if s.front, err = s.launch(cpus, b.haproxy, "-db", "-f", cfgPath); err != nil {
		return out, err
	}
	return out, waitTLS(s.addr, b.pool)
}

// negotiated is what a TLS 1.3 and a TLS 1.2 handshake with addr agree
// on: version, cipher suite and key exchange.
func negotiated(addr string, pool *x509.CertPool, defaultKex bool, sni bool) string {
	var parts []string
	for _, wl := range []workload{workloads[0], workloads[2]} {
		cfg := wl.clientTLS(pool, defaultKex)
		if sni {
			s := sniTLS(pool, "k0.bench")
			cfg.ServerName, cfg.InsecureSkipVerify, cfg.VerifyConnection = s.ServerName, s.InsecureSkipVerify, s.VerifyConnection
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			parts = append(parts, "error: "+err.Error())
			continue
		}
		st := c.ConnectionState()
		c.Close()
		parts = append(parts, fmt.Sprintf("%s %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.CurveID))
	}
	return strings.Join(parts, ", ")
}

func build(dir, pkg string) string {
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		log.Fatalf("build %s: %v", pkg, err)
	}
	return out
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitTLS waits until addr completes a handshake and an echo.
func waitTLS(addr string, pool *x509.CertPool) error {
	return waitEcho(addr, func() (net.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	})
}

// waitSNI waits until addr, which takes its keys from the server name,
// completes a handshake with one and echoes (no key line).
func waitSNI(addr string, pool *x509.CertPool) error {
	return waitEchoAfter(addr, "", func() (net.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, sniTLS(pool, "k0.bench"))
	})
}

// sniTLS sends name as the server name and verifies the certificate as
// issued for 127.0.0.1, as the load generator does with keys from SNI.
func sniTLS(pool *x509.CertPool, name string) *tls.Config {
	return &tls.Config{
		RootCAs: pool, ServerName: name,
		InsecureSkipVerify: true, // verified below, for another name than the one sent
		VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1", Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
}

// waitPlain waits until addr echoes over plain TCP.
func waitPlain(addr string) error {
	return waitEcho(addr, func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 2*time.Second) })
}

// waitEcho waits until a connection from dial echoes after a key line.
func waitEcho(addr string, dial func() (net.Conn, error)) error {
	return waitEchoAfter(addr, "k\n", dial)
}

// waitEchoAfter waits until a connection from dial echoes what follows
// preamble.
func waitEchoAfter(addr, preamble string, dial func() (net.Conn, error)) error {
	var last error
	for i := 0; i < 200; i++ {
		c, err := dial()
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprintf(c, "%sping\n", preamble)
			var line string
			line, err = bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && line == "ping\n" {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("echo %q", line)
			}
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s does not answer: %v", addr, last)
}
