package bench

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/keysrc"
)

// echoServer is an echo server on a real socket that reads a line
// preamble first, the contract every row of the benchmarks keeps. It can
// misbehave on purpose.
type echoServer struct {
	ln      net.Listener
	corrupt bool // flip one byte of every echo
	errRep  bool // answer the preamble with -ERR and close
	mute    bool // read the preamble, then never answer
	enc     frame.Encoding
	secret  []byte // direct preambles: the secret and the shard count
	shards  int
	// keyFrom is where the key is, as a Subordinate with --key-from
	// takes it (the zero value: the preamble). For the http-* sources the
	// request head is echoed back, as Subordinate's echo handler does with
	// the request it gets as early data.
	keyFrom   keysrc.Source
	httpError bool // answer the request head with 400 and close

	mu   sync.Mutex
	keys map[string]int
	wg   sync.WaitGroup
}

func startEcho(t *testing.T, network, addr string, tlsCfg *tls.Config, opt func(*echoServer)) *echoServer {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s := &echoServer{ln: ln, keys: map[string]int{}}
	if opt != nil {
		opt(s)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

func (s *echoServer) accept() {
	defer s.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			s.serve(c)
		}()
	}
}

func (s *echoServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	key, err := s.readKey(c, br)
	if err != nil {
		_, _ = c.Write([]byte("-ERR bad preamble\n"))
		return
	}
	if s.httpError {
		_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		return
	}
	s.mu.Lock()
	s.keys[key]++
	s.mu.Unlock()
	if s.mute {
		_, _ = io.Copy(io.Discard, br)
		return
	}
	if s.errRep {
		_, _ = c.Write([]byte("-ERR refused for test\n"))
		return
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := br.Read(buf)
		if n > 0 {
			if s.corrupt {
				buf[n/2] ^= 0x55
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// readKey finds the key of connection c where s.keyFrom says; it reads
// through br, and echoes an HTTP request head back.
func (s *echoServer) readKey(c net.Conn, br *bufio.Reader) (string, error) {
	switch src := s.keyFrom; {
	case src.Kind == keysrc.SNI:
		tc, ok := c.(*tls.Conn)
		if !ok {
			return "", fmt.Errorf("sni without TLS")
		}
		if err := tc.Handshake(); err != nil {
			return "", err
		}
		return tc.ConnectionState().ServerName, nil
	case src.Kind == keysrc.ClientIP:
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil {
			return "", err
		}
		return string(src.ClientIPKey(ap.Addr())), nil
	case src.HTTP():
		head, key, err := readHTTPKey(br, src)
		if err != nil {
			return "", err
		}
		if !s.httpError {
			if _, err := c.Write(head); err != nil {
				return "", err
			}
		}
		return key, nil
	}
	return s.readPreamble(br)
}

// readHTTPKey reads a request head (at most 8 KiB) from br and returns it
// byte for byte and the key that net/http's parser finds in it for src.
func readHTTPKey(br *bufio.Reader, src keysrc.Source) ([]byte, string, error) {
	var head []byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, "", err
		}
		if head = append(head, line...); len(head) > 8<<10 {
			return nil, "", fmt.Errorf("request head over 8 KiB")
		}
	}
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return nil, "", err
	}
	var key string
	switch src.Kind {
	case keysrc.HTTPHeader:
		key = req.Header.Get(src.Name)
	case keysrc.HTTPCookie:
		if ck, err := req.Cookie(src.Name); err == nil {
			key = ck.Value
		}
	case keysrc.HTTPPath:
		if seg := strings.Split(req.URL.Path, "/"); src.Segment < len(seg) {
			key = seg[src.Segment]
		}
	case keysrc.HTTPQuery:
		key = req.URL.Query().Get(src.Name)
	}
	if key == "" {
		return nil, "", fmt.Errorf("no key in %q", head)
	}
	return head, key, nil
}

// readPreamble reads a line preamble: the key, then "\n".
// readPreamble decodes the preamble with package frame, a byte at a
// time so that nothing past it is consumed. A direct preamble is checked
// with the secret and counted as the key "!<shard>".
func (s *echoServer) readPreamble(br *bufio.Reader) (string, error) {
	enc := s.enc
	if enc == 0 {
		enc = frame.Line
	}
	dec, err := frame.NewDecoder(enc, frame.DefaultMaxKey)
	if err != nil {
		return "", err
	}
	for !dec.Done() {
		b, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		if _, _, err := dec.Feed([]byte{b}); err != nil {
			return "", err
		}
	}
	p := dec.Preamble()
	if p.Direct {
		if err := frame.VerifyDirect(s.secret, s.shards, p.Shard, p.Token); err != nil {
			return "", err
		}
		return fmt.Sprintf("!%d", p.Shard), nil
	}
	return string(p.Key), nil
}

func (s *echoServer) keyCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]int, len(s.keys))
	for k, v := range s.keys {
		m[k] = v
	}
	return m
}
