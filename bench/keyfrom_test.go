package bench

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/subordinate/subordinate/internal/keysrc"
)

// mustSource parses a --key-from value.
func mustSource(t testing.TB, spec string) keysrc.Source {
	t.Helper()
	src, err := keysrc.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// checkKeys checks that every key the server saw is one the run could
// present with keyFrom (key indexes below n), and that it saw at least
// min connections.
func checkKeys(t *testing.T, srv *echoServer, keyFrom string, n, min int) {
	t.Helper()
	valid := map[string]bool{}
	for i := range n {
		k, err := KeyText(keyFrom, i)
		if err != nil {
			t.Fatal(err)
		}
		valid[k] = true
	}
	conns := 0
	for k, c := range srv.keyCounts() {
		if !valid[k] {
			t.Errorf("%s: the server saw key %q, not one of the run's", keyFrom, k)
		}
		conns += c
	}
	if conns < min {
		t.Errorf("%s: the server saw %d connections, want at least %d", keyFrom, conns, min)
	}
}

// TestKeyFromHTTP: each http-* source starts the connection with a request
// head that net/http parses and finds the key in; the head's echo is read
// and checked before the requests', in every mode.
func TestKeyFromHTTP(t *testing.T) {
	for _, spec := range []string{"http-header:X-Key", "http-cookie:sid", "http-path:3", "http-query:room key"} {
		srv := startEcho(t, "tcp", "127.0.0.1:0", nil, func(s *echoServer) { s.keyFrom = mustSource(t, spec) })
		for _, mode := range []Mode{PingPong, Pipeline, Connect} {
			res := runOK(t, Config{Addr: srv.addr(), KeyFrom: spec, Mode: mode, Conns: 3, Requests: 90, Keys: 10})
			checkClean(t, res, 90)
			if res.Report().KeyFrom != spec {
				t.Errorf("%s: report key_from %q", spec, res.Report().KeyFrom)
			}
		}
		checkKeys(t, srv, spec, 10, 90) // connect mode alone opened 90
	}
}

// TestKeyFromHTTPRefused: an HTTP response where the head's echo was due
// is a refusal, with its status line as the reason; a server that echoes
// something else is a mismatch.
func TestKeyFromHTTPRefused(t *testing.T) {
	srv := startEcho(t, "tcp", "127.0.0.1:0", nil, func(s *echoServer) {
		s.keyFrom, s.httpError = mustSource(t, "http-header:X-Key"), true
	})
	for _, mode := range []Mode{PingPong, Pipeline, Connect} {
		res := runOK(t, Config{Addr: srv.addr(), KeyFrom: "http-header:X-Key", Mode: mode, Conns: 2, Duration: time.Minute, MaxErrors: 1})
		if res.Requests != 0 || res.Errors[KindPreamble] == 0 {
			t.Errorf("%v: requests %d, errors %v: want refusals", mode, res.Requests, res.Errors)
		}
		if r := res.Reasons[KindPreamble]; !strings.Contains(r, "HTTP/1.1 400 Bad Request") {
			t.Errorf("%v: reason %q: want the status line", mode, r)
		}
	}
	// A preamble server echoes nothing of the head it cannot parse.
	plain := startEcho(t, "tcp", "127.0.0.1:0", nil, nil)
	res := runOK(t, Config{Addr: plain.addr(), KeyFrom: "http-path:1", Conns: 1, Duration: time.Minute, MaxErrors: 1})
	if res.Requests != 0 || res.ErrorTotal() == 0 {
		t.Errorf("against a preamble server: requests %d, errors %v", res.Requests, res.Errors)
	}
}

// TestKeyFromSNI: the key is the TLS server name, a host name per key;
// the certificate is still verified, against the dialled host.
func TestKeyFromSNI(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := startEcho(t, "tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		func(s *echoServer) { s.keyFrom = mustSource(t, "sni") })
	for _, mode := range []Mode{PingPong, Pipeline, Connect} {
		res := runOK(t, Config{Addr: srv.addr(), KeyFrom: "sni", Mode: mode, Conns: 2, Requests: 60, Keys: 20,
			TLS: &tls.Config{RootCAs: pool}, TLSResume: mode == Connect})
		checkClean(t, res, 60)
	}
	checkKeys(t, srv, "sni", 20, 60)
	if k, _ := KeyText("sni", 7); k != "k7.bench" {
		t.Errorf("sni key 7 = %q", k)
	}
	for name, tc := range map[string]*tls.Config{
		"untrusted":  {},
		"wrong name": {RootCAs: pool, ServerName: "elsewhere.example"},
	} {
		res := runOK(t, Config{Addr: srv.addr(), KeyFrom: "sni", Conns: 1, Duration: time.Minute, MaxErrors: 1, TLS: tc})
		if res.Requests != 0 || res.Errors[KindTLS] == 0 {
			t.Errorf("%s certificate: requests %d, errors %v: want TLS errors", name, res.Requests, res.Errors)
		}
	}
	insecure := runOK(t, Config{Addr: srv.addr(), KeyFrom: "sni", Conns: 1, Requests: 10, TLS: &tls.Config{InsecureSkipVerify: true}})
	checkClean(t, insecure, 10)
}

// TestKeyFromClientIP: each connection comes from its key's loopback
// address, so that the server's key is that address, or its network with
// a prefix.
func TestKeyFromClientIP(t *testing.T) {
	for _, spec := range []string{"client-ip", "client-ip/24"} {
		srv := startEcho(t, "tcp", "127.0.0.1:0", nil, func(s *echoServer) { s.keyFrom = mustSource(t, spec) })
		for _, mode := range []Mode{PingPong, Pipeline, Connect} {
			res := runOK(t, Config{Addr: srv.addr(), KeyFrom: spec, Mode: mode, Conns: 3, Requests: 300, Keys: 300, Linger0: true})
			checkClean(t, res, 300)
		}
		if spec == "client-ip" {
			checkKeys(t, srv, spec, 300, 300)
			continue
		}
		// With /24 the server's key is a network: keys 0 to 299 fall in
		// 300 distinct ones, 127.<i+1 mod 256>.<(i+1)/256>.0/24.
		src := mustSource(t, spec)
		valid := map[string]bool{}
		for i := range 300 {
			valid[string(src.ClientIPKey(KeyAddr(i)))] = true
		}
		if len(valid) != 300 {
			t.Fatalf("%d distinct /24 networks for 300 keys", len(valid))
		}
		for k := range srv.keyCounts() {
			if !valid[k] {
				t.Errorf("client-ip/24: key %q", k)
			}
		}
	}
}

func TestKeyAddr(t *testing.T) {
	for i, want := range map[int]string{0: "127.1.0.0", 1: "127.2.0.0", 254: "127.255.0.0", 255: "127.0.1.0",
		MaxClientIPKeys - 1: "127.254.255.255"} {
		if got := KeyAddr(i).String(); got != want {
			t.Errorf("KeyAddr(%d) = %s, want %s", i, got, want)
		}
	}
	seen := map[netip.Addr]bool{}
	for i := range 70000 {
		a := KeyAddr(i)
		if !a.IsLoopback() || seen[a] || a == netip.MustParseAddr("127.0.0.0") {
			t.Fatalf("KeyAddr(%d) = %s: not a fresh loopback address", i, a)
		}
		seen[a] = true
	}
	if k, err := KeyText("client-ip/8", 3); err != nil || k != "127.4.0.0" {
		t.Errorf("KeyText(client-ip/8, 3) = %q, %v", k, err)
	}
	if _, err := KeyText("ip", 3); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("KeyText(ip) error %v", err)
	}
}

// TestHTTPHead pins the request head of each http-* source, byte for byte.
func TestHTTPHead(t *testing.T) {
	for spec, want := range map[string]string{
		"http-header:X-Key":  "GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\nX-Key: k7\r\n\r\n",
		"http-cookie:sid":    "GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\nCookie: sid=k7\r\n\r\n",
		"http-path:1":        "GET /k7 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n",
		"http-path:3":        "GET /k/k/k7 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n",
		"http-query:room id": "GET /?room+id=k7 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n",
	} {
		cfg := Config{Addr: "127.0.0.1:80", KeyFrom: spec}
		p := newKeyPlan(&cfg)
		if got := string(p.appendHead(nil, []byte("k7"))); got != want {
			t.Errorf("%s: head %q, want %q", spec, got, want)
		}
		if n := len(want); n > headLimit(&p) {
			t.Errorf("%s: head of %d bytes over its limit %d", spec, n, headLimit(&p))
		}
	}
}

// FuzzHTTPHead: for any source name Parse accepts and any key index, the
// head is one request that net/http parses, holding that key, within
// headLimit.
func FuzzHTTPHead(f *testing.F) {
	f.Add("http-header:X-Key", 0)
	f.Add("http-cookie:a.b", 12345)
	f.Add("http-query:q&r=s", 1<<30-1)
	f.Add("http-path:64", 7)
	f.Fuzz(func(t *testing.T, spec string, i int) {
		src, err := keysrc.Parse(spec)
		if err != nil || !src.HTTP() || i < 0 || i >= MaxKeys {
			return
		}
		cfg := Config{Addr: "127.0.0.1:7000", KeyFrom: spec}
		p := newKeyPlan(&cfg)
		key := appendKeyText(nil, src.Kind, i)
		head := p.appendHead(nil, key)
		if len(head) > headLimit(&p) {
			t.Fatalf("head of %d bytes over %d", len(head), headLimit(&p))
		}
		br := bufio.NewReader(bytes.NewReader(head))
		got, k, err := readHTTPKey(br, src)
		if err != nil {
			t.Fatalf("%s: head %q: %v", spec, head, err)
		}
		if k != string(key) || !bytes.Equal(got, head) || br.Buffered() != 0 {
			t.Fatalf("%s: head %q: key %q, want %q", spec, head, k, key)
		}
	})
}

// TestKeyFromVerify: the combinations a source cannot work with are
// invalid configs.
func TestKeyFromVerify(t *testing.T) {
	tlsCfg := &tls.Config{}
	for name, cfg := range map[string]Config{
		"bad spec":         {KeyFrom: "ip"},
		"sni without tls":  {KeyFrom: "sni"},
		"http binary":      {KeyFrom: "http-path:1", Frame: FrameBinary},
		"http direct":      {KeyFrom: "http-path:1", Frame: FrameDirect, Secret: []byte("s"), Shards: 2},
		"ip unix":          {KeyFrom: "client-ip", Addr: filepath.Join(t.TempDir(), "s")},
		"ip not loopback":  {KeyFrom: "client-ip", Addr: "192.0.2.1:7000"},
		"ip ipv6 loopback": {KeyFrom: "client-ip", Addr: "[::1]:7000"},
		"ip hostname":      {KeyFrom: "client-ip", Addr: "localhost:7000"},
		"ip keys":          {KeyFrom: "client-ip", Keys: MaxClientIPKeys + 1},
	} {
		if err := cfg.Verify(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Verify() = %v, want ErrInvalidConfig", name, err)
		}
	}
	for name, cfg := range map[string]Config{
		"frame":         {KeyFrom: "frame", Frame: FrameBinary},
		"sni":           {KeyFrom: "sni", TLS: tlsCfg},
		"ip":            {KeyFrom: "client-ip/24,64", Addr: "127.0.0.1:7000", Keys: MaxClientIPKeys},
		"http over tls": {KeyFrom: "http-cookie:sid", TLS: tlsCfg},
	} {
		if err := cfg.Verify(); err != nil {
			t.Errorf("%s: Verify() = %v", name, err)
		}
	}
}
