//go:build linux

// Command tlscmp measures Subordinate's TLS termination against a plain Go
// crypto/tls server, side by side in one run: TLS handshakes per second
// (a fresh connection and full handshake per request, no resumption) for
// TLS 1.3 and 1.2, and 1 KiB ping-pong echo over established TLS
// connections. Both servers run as their own processes serving echo after
// the same line preamble; the load comes from the bench package. It
// prints a markdown table of medians, with server CPU time per request,
// which on a 2-core machine (the client takes about half) is the fairer
// comparison.
//
//	cd bench/compare && go run ./tlscmp -runs 5 -duration 5s
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/subordinate/subordinate/bench"
)

func main() {
	runs := flag.Int("runs", 5, "runs of every cell; the median is reported")
	dur := flag.Duration("duration", 5*time.Second, "duration of one cell")
	conns := flag.Int("conns", 16, "client connections")
	workers := flag.Int("workers", 2, "workers of the multi-worker Subordinate row")
	flag.Parse()

	dir, err := os.MkdirTemp("", "tlscmp")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cert, key, pool := makeCert(dir)
	// Import paths, not directories: this runs in the nested module
	// bench/compare, which builds the Subordinate of this checkout.
	sub := build(dir, "github.com/subordinate/subordinate/cmd/subordinate")
	std := build(dir, "github.com/subordinate/subordinate/bench/compare/stdecho")

	type server struct {
		name string
		cmd  *exec.Cmd
		addr string
	}
	servers := []*server{
		{name: "Go crypto/tls, goroutine per conn"},
		{name: "Subordinate, 1 worker"},
		{name: fmt.Sprintf("Subordinate, %d workers", *workers)},
	}
	for i, s := range servers {
		s.addr = freeAddr()
		switch i {
		case 0:
			s.cmd = exec.Command(std, "-addr", s.addr, "-tls-cert", cert, "-tls-key", key)
		default:
			w := 1
			if i == 2 {
				w = *workers
			}
			s.cmd = exec.Command(sub, "serve", "--listen", "tls://"+s.addr, "--workers", strconv.Itoa(w),
				"--handler", "echo", "--cert", cert, "--key", key, "--log-level", "warn")
		}
		s.cmd.Stderr = os.Stderr
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := s.cmd.Start(); err != nil {
			log.Fatal(err)
		}
		defer func() {
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
			_ = s.cmd.Wait()
		}()
		waitTLS(s.addr, pool)
	}

	type cell struct{ rps, cpu []float64 }
	workloads := []struct {
		name string
		cfg  bench.Config
	}{
		{"handshakes/s, TLS 1.3", bench.Config{Mode: bench.Connect, Size: 64, TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}}},
		{"handshakes/s, TLS 1.2", bench.Config{Mode: bench.Connect, Size: 64, TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12}}},
		{"echo req/s, 1 KiB ping-pong", bench.Config{Mode: bench.PingPong, Size: 1024, TLS: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}},
	}
	results := make([][]cell, len(workloads))
	for w := range workloads {
		results[w] = make([]cell, len(servers))
	}
	for run := 0; run < *runs; run++ {
		for w, wl := range workloads {
			for i, s := range servers {
				cfg := wl.cfg
				cfg.Addr, cfg.Conns, cfg.Duration, cfg.Keys = s.addr, *conns, *dur, 1000
				before := treeCPU(s.cmd.Process.Pid)
				res, err := bench.Run(context.Background(), cfg)
				if err != nil {
					log.Fatal(err)
				}
				cpu := treeCPU(s.cmd.Process.Pid) - before
				if res.ErrorTotal() > 0 {
					log.Printf("%s, %s: errors %v", s.name, wl.name, res.Errors)
				}
				results[w][i].rps = append(results[w][i].rps, res.RPS())
				results[w][i].cpu = append(results[w][i].cpu, cpu.Seconds()*1e6/float64(max(res.Requests, 1)))
				fmt.Fprintf(os.Stderr, "run %d  %-30s %-34s %9.0f/s  %6.1f µs CPU/req\n", run+1, wl.name, s.name, res.RPS(), results[w][i].cpu[run])
			}
		}
	}
	fmt.Printf("| workload | server | per second | ratio | server CPU µs per request | ratio |\n|---|---|--:|--:|--:|--:|\n")
	for w, wl := range workloads {
		base := results[w][0]
		for i, s := range servers {
			c := results[w][i]
			fmt.Printf("| %s | %s | %.0f | %.2f | %.1f | %.2f |\n", wl.name, s.name,
				median(c.rps), median(c.rps)/median(base.rps), median(c.cpu), median(c.cpu)/median(base.cpu))
		}
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
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
func waitTLS(addr string, pool *x509.CertPool) {
	for i := 0; i < 200; i++ {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err == nil {
			c.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprintf(c, "k\nping\n")
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && line == "ping\n" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatalf("%s does not answer", addr)
}

// makeCert writes a self-signed ECDSA P-256 certificate for 127.0.0.1.
func makeCert(dir string) (certFile, keyFile string, pool *x509.CertPool) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	leaf, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
	return certFile, keyFile, pool
}

// treeCPU is the user+system CPU time of pid and its descendants.
func treeCPU(pid int) time.Duration {
	var ticks int64
	for _, p := range tree(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + k
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// tree returns pid and its descendants. Every thread's children count:
// Subordinate's master starts its workers from a thread of their own.
func tree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}
