// Command stdecho is the "Go standard library" row of BENCHMARKS.md: a
// goroutine-per-connection echo server built on net only, serving echo after
// the same line preamble as Subordinate. It is what a Go programmer writes
// first.
//
//	stdecho -addr 127.0.0.1:7001 [-maxkey 1024] [-keylog FILE]
//
// A connection first sends its key terminated by '\n' (a '\r' before the
// '\n' is dropped); every byte after that, including bytes that arrived in
// the same read as the key, is echoed back unchanged. A key longer than
// -maxkey gets "-ERR key too long\n" and the connection is closed.
//
// With -keylog, the key of every connection is appended to FILE before the
// first byte is echoed.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"log/slog"
	"net"
	"os"
	"sync"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7001", "listen address `host:port`")
	maxKey := flag.Int("maxkey", 1024, "longest accepted key in bytes")
	keyLog := flag.String("keylog", "", "append the key of each connection to `file`")
	tlsCert := flag.String("tls-cert", "", "serve TLS with this PEM certificate `file` (with -tls-key): a plain Go crypto/tls server")
	tlsKey := flag.String("tls-key", "", "PEM private key `file` of -tls-cert")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s := &server{maxKey: *maxKey, log: log}
	if *keyLog != "" {
		f, err := os.OpenFile(*keyLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			log.Error("stdecho: open key log", "err", err)
			os.Exit(1)
		}
		s.keyLog = f
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Error("stdecho: listen", "err", err)
		os.Exit(1)
	}
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			log.Error("stdecho: TLS certificate", "err", err)
			os.Exit(1)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	log.Info("stdecho: listening", "addr", ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			log.Error("stdecho: accept", "err", err)
			os.Exit(1)
		}
		go s.serve(c)
	}
}

type server struct {
	maxKey int
	log    *slog.Logger
	keyLog *os.File
	mu     sync.Mutex
}

// serve reads the preamble, then echoes until the client closes.
func (s *server) serve(c net.Conn) {
	defer c.Close()
	// The reader's buffer bounds the key: ReadSlice fails with
	// bufio.ErrBufferFull when no '\n' fits in it.
	r := bufio.NewReaderSize(c, s.maxKey+2)
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			_, _ = c.Write([]byte("-ERR key too long\n"))
		}
		return
	}
	key := bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	if len(key) > s.maxKey {
		_, _ = c.Write([]byte("-ERR key too long\n"))
		return
	}
	if s.keyLog != nil {
		s.logKey(key)
	}
	// Bytes that came with the preamble first, then the socket itself.
	if n := r.Buffered(); n > 0 {
		rest, _ := r.Peek(n)
		if _, err := c.Write(rest); err != nil {
			return
		}
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (s *server) logKey(key []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := append(append(make([]byte, 0, len(key)+1), key...), '\n')
	if _, err := s.keyLog.Write(line); err != nil {
		s.log.Error("stdecho: key log", "err", err)
	}
}
