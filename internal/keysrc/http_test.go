package keysrc

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/subordinate/subordinate/frame"
)

// httpResult is everything an HTTPReader answers about one request.
type httpResult struct {
	done    bool
	status  int
	reason  string
	key     string
	hasKey  bool
	headLen int
	direct  bool
	shard   uint32
	token   frame.Token
}

func (r httpResult) String() string {
	var b strings.Builder
	switch {
	case r.status != 0:
		b.WriteString("refused " + http.StatusText(r.status) + ": " + r.reason)
	case !r.done:
		b.WriteString("not done")
	case r.hasKey:
		b.WriteString("key " + strconvQuote(r.key))
	default:
		b.WriteString("no key")
	}
	if r.direct {
		b.WriteString(" direct")
	}
	return b.String()
}

func strconvQuote(s string) string { return "\"" + strings.ReplaceAll(s, "\"", "\\\"") + "\"" }

// feedHTTP feeds data to h in pieces: sizes returns the length of each
// next piece (nil: all at once). Each Feed is given the whole prefix
// received so far, as the server gives it. It checks that h never scans a
// byte twice: after a Feed that is neither done nor refused, every byte
// of the prefix has been checked (but a last CR, whose LF is awaited).
func feedHTTP(t testing.TB, h *HTTPReader, data []byte, sizes func() int) httpResult {
	t.Helper()
	var (
		done bool
		err  error
	)
	for n := 0; ; {
		step := len(data) - n
		if sizes != nil {
			step = min(step, max(sizes(), 1))
		}
		n += step
		done, err = h.Feed(data[:n])
		if done || err != nil || n == len(data) {
			break
		}
		if want := min(n, h.maxHead); h.scan != want && !(h.scan == want-1 && data[want-1] == '\r') {
			t.Fatalf("after Feed of %d bytes, scan = %d: bytes would be read again", n, h.scan)
		}
	}
	r := httpResult{done: done}
	if err != nil {
		var he *HTTPError
		if !errors.As(err, &he) {
			t.Fatalf("Feed error %v (%T) is not an *HTTPError", err, err)
		}
		if done {
			t.Fatalf("Feed returned done and %v", err)
		}
		r.status, r.reason = he.Status, he.Reason
		if again, err2 := h.Feed(data); again || err2 != err {
			t.Fatalf("Feed after refusal = %v, %v; want the same refusal", again, err2)
		}
		return r
	}
	if !done {
		if h.Key() != nil || h.HeadLen() != 0 {
			t.Fatalf("Key or HeadLen before done: %q, %d", h.Key(), h.HeadLen())
		}
		return r
	}
	if k := h.Key(); k != nil {
		if len(k) == 0 {
			t.Fatal("Key returned an empty, non-nil key")
		}
		r.key, r.hasKey = string(k), true
	}
	r.headLen = h.HeadLen()
	r.shard, r.token, r.direct = h.Direct()
	return r
}

func mustSource(t testing.TB, spec string) Source {
	t.Helper()
	src, err := Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// readAllWays reads data whole, in pieces of one byte and in pieces of
// a few bytes, checks that all agree and returns the answer.
func readAllWays(t testing.TB, src Source, maxHead, maxKey int, data []byte) httpResult {
	t.Helper()
	var h HTTPReader
	h.Init(src, maxHead, maxKey)
	whole := feedHTTP(t, &h, data, nil)
	h.Reset()
	bytewise := feedHTTP(t, &h, data, func() int { return 1 })
	h.Reset()
	k := 0
	pieces := feedHTTP(t, &h, data, func() int { k++; return k%7 + 1 })
	if whole != bytewise || whole != pieces {
		t.Fatalf("%q: whole: %v, byte by byte: %v, in pieces: %v", data, whole, bytewise, pieces)
	}
	return whole
}

const (
	testToken = "feebe39a44980908718a0e2e9f7a4080cbdcd28b4bb3eff8e5e25dea9cd41b35"
	noKey     = "\x00no key"
)

type httpCase struct {
	name    string
	spec    string
	req     string
	key     string // noKey: done, Key nil
	status  int    // a refusal
	maxHead int
	maxKey  int
}

func runHTTPCases(t *testing.T, cases []httpCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := readAllWays(t, mustSource(t, c.spec), c.maxHead, c.maxKey, []byte(c.req))
			switch {
			case c.status != 0:
				if r.status != c.status {
					t.Fatalf("%q: %v; want refused with %d", c.req, r, c.status)
				}
			case !r.done:
				t.Fatalf("%q: %v; want done", c.req, r)
			case c.key == noKey && r.hasKey, c.key != noKey && (!r.hasKey || r.key != c.key):
				t.Fatalf("%q: %v; want key %q", c.req, r, c.key)
			}
			if r.done {
				if end := strings.Index(c.req, "\r\n\r\n"); end >= 0 && !strings.Contains(c.req[:end], "\n\n") && r.headLen != end+4 {
					t.Fatalf("HeadLen = %d, want %d", r.headLen, end+4)
				}
			}
		})
	}
}

func TestHTTPReaderHeader(t *testing.T) {
	const spec = "http-header:X-Room"
	runHTTPCases(t, []httpCase{
		{name: "plain", spec: spec, req: "GET / HTTP/1.1\r\nHost: a\r\nX-Room: lobby\r\n\r\n", key: "lobby"},
		{name: "case", spec: spec, req: "GET / HTTP/1.1\r\nx-rOOm: lobby\r\n\r\n", key: "lobby"},
		{name: "no space", spec: spec, req: "GET / HTTP/1.1\r\nX-Room:lobby\r\n\r\n", key: "lobby"},
		{name: "OWS", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: \t lob by \t \r\n\r\n", key: "lob by"},
		{name: "first wins", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: one\r\nX-Room: two\r\n\r\n", key: "one"},
		{name: "first empty wins", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: \r\nX-Room: two\r\n\r\n", key: noKey},
		{name: "absent", spec: spec, req: "GET / HTTP/1.1\r\nX-Rooms: one\r\nX-Roo: two\r\n\r\n", key: noKey},
		{name: "no headers", spec: spec, req: "GET / HTTP/1.1\r\n\r\n", key: noKey},
		{name: "bare LF", spec: spec, req: "GET / HTTP/1.1\nHost: a\nX-Room: lobby\n\n", key: "lobby"},
		{name: "mixed endings", spec: spec, req: "GET / HTTP/1.1\r\nHost: a\nX-Room: lobby\r\n\n", key: "lobby"},
		{name: "HTTP/1.0", spec: spec, req: "POST /x HTTP/1.0\r\nX-Room: lobby\r\n\r\nbody", key: "lobby"},
		{name: "obs-text", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: caf\xc3\xa9\r\n\r\n", key: "café"},
		{name: "colon in value", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: a:b\r\n\r\n", key: "a:b"},
		{name: "body ignored", spec: spec, req: "POST / HTTP/1.1\r\nX-Room: k\r\nContent-Length: 3\r\n\r\n\x00\r\x01", key: "k"},
		{name: "max key", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: abcd\r\n\r\n", maxKey: 4, key: "abcd"},
		{name: "key too long", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: abcde\r\n\r\n", maxKey: 4, status: 400},
		{name: "later too long ignored", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: abc\r\nX-Room: abcde\r\n\r\n", maxKey: 4, key: "abc"},
		{name: "cookie header", spec: "http-header:cookie", req: "GET / HTTP/1.1\r\nCookie: a=1; b=2\r\nCookie: c=3\r\n\r\n", key: "a=1; b=2"},
	})
}

func TestHTTPReaderCookie(t *testing.T) {
	const spec = "http-cookie:sid"
	req := func(cookies ...string) string {
		s := "GET / HTTP/1.1\r\nHost: a\r\n"
		for _, c := range cookies {
			s += "Cookie: " + c + "\r\n"
		}
		return s + "\r\n"
	}
	runHTTPCases(t, []httpCase{
		{name: "middle", spec: spec, req: req("a=1; sid=abc; b=2"), key: "abc"},
		{name: "first", spec: spec, req: req("sid=abc"), key: "abc"},
		{name: "no spaces", spec: spec, req: req("a=1;sid=abc;b=2"), key: "abc"},
		{name: "extra spaces", spec: spec, req: req(" a=1 ;  sid = abc"), key: " abc"},
		{name: "quoted", spec: spec, req: req(`a=1; sid="abc"`), key: "abc"},
		{name: "lone quote", spec: spec, req: req(`sid="; sid=b`), key: "b"},
		{name: "second header", spec: spec, req: req("a=1", "b=2; sid=abc"), key: "abc"},
		{name: "first wins", spec: spec, req: req("sid=1; sid=2", "sid=3"), key: "1"},
		{name: "first header wins", spec: spec, req: req("sid=1", "sid=2"), key: "1"},
		{name: "invalid value skipped", spec: spec, req: req(`sid=a\b; sid=a"b; sid=ok`), key: "ok"},
		{name: "space inside", spec: spec, req: req("sid=a b"), key: "a b"},
		{name: "case-sensitive", spec: spec, req: req("SID=abc; Sid=x"), key: noKey},
		{name: "empty", spec: spec, req: req("sid=; sid=x"), key: noKey},
		{name: "empty quoted", spec: spec, req: req(`sid=""`), key: noKey},
		{name: "absent", spec: spec, req: req("a=1; sidx=2; xsid=3"), key: noKey},
		{name: "no cookie", spec: spec, req: req(), key: noKey},
		{name: "empty pairs", spec: spec, req: req(";;  ; sid=abc;"), key: "abc"},
		{name: "too long", spec: spec, req: req("sid=abcde"), maxKey: 4, status: 400},
		{name: "quotes do not count", spec: spec, req: req(`sid="abcd"`), maxKey: 4, key: "abcd"},
	})
}

func TestHTTPReaderPath(t *testing.T) {
	const spec = "http-path:2"
	req := func(target string) string { return "GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n" }
	runHTTPCases(t, []httpCase{
		{name: "middle", spec: spec, req: req("/rooms/lobby/ws"), key: "lobby"},
		{name: "last", spec: spec, req: req("/rooms/lobby"), key: "lobby"},
		{name: "first", spec: "http-path:1", req: req("/lobby/ws"), key: "lobby"},
		{name: "too short", spec: spec, req: req("/rooms"), key: noKey},
		{name: "root", spec: spec, req: req("/"), key: noKey},
		{name: "trailing slash", spec: spec, req: req("/rooms/"), key: noKey},
		{name: "empty segment", spec: spec, req: req("/rooms//lobby"), key: noKey},
		{name: "query", spec: spec, req: req("/rooms/lobby?x=1/2"), key: "lobby"},
		{name: "query right after", spec: spec, req: req("/rooms?/lobby"), key: noKey},
		{name: "escaped", spec: spec, req: req("/rooms/caf%C3%a9"), key: "café"},
		{name: "escaped slash", spec: spec, req: req("/rooms/a%2Fb/c"), key: "a/b"},
		{name: "plus stays", spec: spec, req: req("/rooms/a+b"), key: "a+b"},
		{name: "raw UTF-8", spec: spec, req: req("/rooms/caf\xc3\xa9"), key: "café"},
		{name: "bad escape", spec: spec, req: req("/rooms/a%zz"), status: 400},
		{name: "short escape", spec: spec, req: req("/rooms/a%2"), status: 400},
		{name: "short escape before query", spec: spec, req: req("/rooms/a%?x"), status: 400},
		{name: "bad escape elsewhere", spec: spec, req: req("/r%zz/lobby/%"), key: "lobby"},
		{name: "absolute", spec: spec, req: req("http://example.com/rooms/lobby"), key: "lobby"},
		{name: "absolute https port", spec: spec, req: req("HTTPS://example.com:8443/rooms/lobby?a"), key: "lobby"},
		{name: "absolute no path", spec: spec, req: req("http://example.com"), key: noKey},
		{name: "absolute query", spec: spec, req: req("http://example.com?/rooms/lobby"), key: noKey},
		{name: "absolute no authority", spec: spec, req: req("http:/rooms/lobby"), key: "lobby"},
		{name: "opaque", spec: spec, req: req("urn:rooms/lobby"), key: noKey},
		{name: "asterisk", spec: spec, req: "OPTIONS * HTTP/1.1\r\n\r\n", key: noKey},
		{name: "connect", spec: spec, req: "CONNECT example.com:443 HTTP/1.1\r\n\r\n", key: noKey},
		{name: "connect path", spec: spec, req: "CONNECT /rooms/lobby HTTP/1.1\r\n\r\n", key: "lobby"},
		{name: "decoded length", spec: spec, req: req("/r/%41%42%43%44"), maxKey: 4, key: "ABCD"},
		{name: "too long", spec: spec, req: req("/r/%41%42%43%44e"), maxKey: 4, status: 400},
		{name: "segment 64", spec: "http-path:64", req: req(strings.Repeat("/s", 63) + "/k"), key: "k"},
	})
}

func TestHTTPReaderQuery(t *testing.T) {
	const spec = "http-query:room"
	req := func(target string) string { return "GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n" }
	runHTTPCases(t, []httpCase{
		{name: "only", spec: spec, req: req("/?room=lobby"), key: "lobby"},
		{name: "first wins", spec: spec, req: req("/chat?a=1&room=lobby&room=two"), key: "lobby"},
		{name: "plus", spec: spec, req: req("/?room=a+b"), key: "a b"},
		{name: "escaped", spec: spec, req: req("/?room=%41%2b%26"), key: "A+&"},
		{name: "escaped name", spec: spec, req: req("/?ro%6Fm=x"), key: "x"},
		{name: "name with space", spec: "http-query:a b", req: req("/?a+b=x"), key: "x"},
		{name: "no value", spec: spec, req: req("/?room&room=x"), key: noKey},
		{name: "empty value", spec: spec, req: req("/?room="), key: noKey},
		{name: "semicolon pair skipped", spec: spec, req: req("/?a=1;room=x&room=y"), key: "y"},
		{name: "semicolon in value skipped", spec: spec, req: req("/?room=x;y"), key: noKey},
		{name: "bad name skipped", spec: spec, req: req("/?%zz=1&room=x"), key: "x"},
		{name: "bad other value ignored", spec: spec, req: req("/?a=%zz&room=x"), key: "x"},
		{name: "bad value", spec: spec, req: req("/?room=%zz"), status: 400},
		{name: "short escape", spec: spec, req: req("/?room=a%4"), status: 400},
		{name: "absent", spec: spec, req: req("/?rooms=1&roo=2"), key: noKey},
		{name: "no query", spec: spec, req: req("/room=x"), key: noKey},
		{name: "empty query", spec: spec, req: req("/?"), key: noKey},
		{name: "empty pairs", spec: spec, req: req("/?&&room=x&"), key: "x"},
		{name: "question mark in value", spec: spec, req: req("/?room=a?b"), key: "a?b"},
		{name: "absolute", spec: spec, req: req("http://h/p?room=x"), key: "x"},
		{name: "absolute no path", spec: spec, req: req("http://h?room=x"), key: "x"},
		{name: "asterisk", spec: spec, req: "OPTIONS * HTTP/1.1\r\n\r\n", key: noKey},
		{name: "too long", spec: spec, req: req("/?room=a+b+c"), maxKey: 4, status: 400},
	})
}

func TestHTTPReaderRefusals(t *testing.T) {
	const spec = "http-header:X-Room"
	long := "GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\n\r\n"
	runHTTPCases(t, []httpCase{
		{name: "HTTP/2 preface", spec: spec, req: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", status: 400},
		{name: "HTTP/2.0", spec: spec, req: "GET / HTTP/2.0\r\n\r\n", status: 400},
		{name: "HTTP/1.2", spec: spec, req: "GET / HTTP/1.2\r\n\r\n", status: 400},
		{name: "lower-case version", spec: spec, req: "GET / http/1.1\r\n\r\n", status: 400},
		{name: "HTTP/0.9", spec: spec, req: "GET /\r\n\r\n", status: 400},
		{name: "two spaces", spec: spec, req: "GET  / HTTP/1.1\r\n\r\n", status: 400},
		{name: "space at end", spec: spec, req: "GET / HTTP/1.1 \r\n\r\n", status: 400},
		{name: "space first", spec: spec, req: " GET / HTTP/1.1\r\n\r\n", status: 400},
		{name: "tab separator", spec: spec, req: "GET\t/ HTTP/1.1\r\n\r\n", status: 400},
		{name: "leading empty line", spec: spec, req: "\r\nGET / HTTP/1.1\r\n\r\n", status: 400},
		{name: "leading LF", spec: spec, req: "\nGET / HTTP/1.1\r\n\r\n", status: 400},
		{name: "bad method", spec: spec, req: "G(T / HTTP/1.1\r\n\r\n", status: 400},
		{name: "TLS ClientHello", spec: spec, req: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", status: 400},
		{name: "tab in target", spec: spec, req: "GET /a\tb HTTP/1.1\r\n\r\n", status: 400},
		{name: "relative target", spec: spec, req: "GET a/b HTTP/1.1\r\n\r\n", status: 400},
		{name: "no scheme", spec: spec, req: "GET :a/b HTTP/1.1\r\n\r\n", status: 400},
		{name: "digit scheme", spec: spec, req: "GET 1http://a/b HTTP/1.1\r\n\r\n", status: 400},
		{name: "asterisk with more", spec: spec, req: "OPTIONS *x HTTP/1.1\r\n\r\n", status: 400},
		{name: "obs-fold", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: a\r\n b\r\n\r\n", status: 400},
		{name: "obs-fold tab", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: a\r\n\tb\r\n\r\n", status: 400},
		{name: "space before first header", spec: spec, req: "GET / HTTP/1.1\r\n X-Room: a\r\n\r\n", status: 400},
		{name: "bare CR in request line", spec: spec, req: "GET / HTTP/1.1\rX-Room: a\r\n\r\n", status: 400},
		{name: "bare CR in value", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: a\rb\r\n\r\n", status: 400},
		{name: "CR CR LF", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: a\r\r\n\r\n", status: 400},
		{name: "CR ending head", spec: spec, req: "GET / HTTP/1.1\r\n\r\r\n", status: 400},
		{name: "NUL in value", spec: spec, req: "GET / HTTP/1.1\r\nX-Room: a\x00b\r\n\r\n", status: 400},
		{name: "NUL in target", spec: spec, req: "GET /a\x00b HTTP/1.1\r\n\r\n", status: 400},
		{name: "control in value", spec: spec, req: "GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n", status: 400},
		{name: "DEL in value", spec: spec, req: "GET / HTTP/1.1\r\nX-A: a\x7fb\r\n\r\n", status: 400},
		{name: "no colon", spec: spec, req: "GET / HTTP/1.1\r\nX-Room\r\n\r\n", status: 400},
		{name: "space before colon", spec: spec, req: "GET / HTTP/1.1\r\nX-Room : a\r\n\r\n", status: 400},
		{name: "tab before colon", spec: spec, req: "GET / HTTP/1.1\r\nX-Room\t: a\r\n\r\n", status: 400},
		{name: "space in name", spec: spec, req: "GET / HTTP/1.1\r\nX Room: a\r\n\r\n", status: 400},
		{name: "empty name", spec: spec, req: "GET / HTTP/1.1\r\n: a\r\n\r\n", status: 400},
		{name: "bad name", spec: spec, req: "GET / HTTP/1.1\r\nX(Room): a\r\n\r\n", status: 400},
		{name: "UTF-8 name", spec: spec, req: "GET / HTTP/1.1\r\nX-R\xc3\xa9: a\r\n\r\n", status: 400},
		{name: "request line fits", spec: spec, req: long, maxHead: len(long), key: noKey},
		{name: "request line too long", spec: spec, req: long, maxHead: len(long) - 3, status: 414},
		{name: "request line ends at bound", spec: spec, req: long, maxHead: len(long) - 2, status: 431},
		{name: "CR at bound", spec: spec, req: long, maxHead: len(long) - 1, status: 431},
		{name: "head never ends", spec: spec, req: "GET / HTTP/1.1\r\n" + strings.Repeat("X-A: b\r\n", 100), maxHead: 128, status: 431},
		{name: "request line never ends", spec: spec, req: "GET /" + strings.Repeat("a", 200), maxHead: 128, status: 414},
	})
}

func TestHTTPReaderIncomplete(t *testing.T) {
	src := mustSource(t, "http-header:X-Room")
	for _, s := range []string{
		"", "G", "GET", "GET ", "GET / HTTP/1.1", "GET / HTTP/1.1\r", "GET / HTTP/1.1\r\n",
		"GET / HTTP/1.1\r\nX-Room: a\r\n", "GET / HTTP/1.1\r\nX-Room: a\r\n\r",
	} {
		var h HTTPReader
		h.Init(src, 0, 0)
		if r := feedHTTP(t, &h, []byte(s), nil); r.done || r.status != 0 {
			t.Errorf("%q: %v; want not done", s, r)
		}
	}
}

// TestHTTPReaderFailsFast checks that what is not HTTP is refused at its
// first byte that cannot start a request line, not at the bound.
func TestHTTPReaderFailsFast(t *testing.T) {
	src := mustSource(t, "http-path:1")
	for _, s := range []string{"\x16\x03\x01", "\x00", "GE\x16", "GET(", "{\"k\":1}"} {
		var h HTTPReader
		h.Init(src, 0, 0)
		if _, err := h.Feed([]byte(s)); err == nil {
			t.Errorf("Feed(%q) = nil error; want a refusal at once", s)
		}
	}
}

func TestHTTPReaderDirect(t *testing.T) {
	src := mustSource(t, "http-header:X-Room")
	tok, err := hex.DecodeString(testToken)
	if err != nil {
		t.Fatal(err)
	}
	req := func(h ...string) []byte {
		s := "GET / HTTP/1.1\r\nX-Room: k\r\n"
		for _, v := range h {
			s += v + "\r\n"
		}
		return []byte(s + "\r\n")
	}
	for _, c := range []struct {
		header string
		shard  uint32
		ok     bool
	}{
		{"Subordinate-Direct: 7 " + testToken, 7, true},
		{"subordinate-direct:7 " + strings.ToUpper(testToken) + " ", 7, true},
		{"Subordinate-Direct: 0 " + testToken, 0, true},
		{"Subordinate-Direct: 4294967295 " + testToken, 4294967295, true},
	} {
		r := readAllWays(t, src, 0, 0, req(c.header))
		if !r.done || !r.direct || r.shard != c.shard || !bytes.Equal(r.token[:], tok) || r.key != "k" {
			t.Errorf("%q: %v shard %d token %x; want direct to %d", c.header, r, r.shard, r.token, c.shard)
		}
		// The token as the server checks it.
		if r.direct {
			if err := frame.VerifyDirect([]byte("s3cret"), 8, 7, r.token); err != nil && c.shard == 7 {
				t.Errorf("VerifyDirect: %v", err)
			}
		}
	}
	if r := readAllWays(t, src, 0, 0, req("X-Direct: 7 "+testToken)); !r.done || r.direct {
		t.Errorf("without the header: %v; want done, not direct", r)
	}
	for _, bad := range []string{
		"Subordinate-Direct: 4294967296 " + testToken,
		"Subordinate-Direct: 07 " + testToken,
		"Subordinate-Direct: -7 " + testToken,
		"Subordinate-Direct: +7 " + testToken,
		"Subordinate-Direct: 7 " + testToken[:63],
		"Subordinate-Direct: 7 " + testToken + "0",
		"Subordinate-Direct: 7 " + testToken[:63] + "g",
		"Subordinate-Direct: 7  " + testToken,
		"Subordinate-Direct: 7\t" + testToken,
		"Subordinate-Direct: 7",
		"Subordinate-Direct: " + testToken,
		"Subordinate-Direct:",
		"Subordinate-Direct: !7 " + testToken,
	} {
		if r := readAllWays(t, src, 0, 0, req(bad)); r.status != 400 {
			t.Errorf("%q: %v; want 400", bad, r)
		}
	}
	h := "Subordinate-Direct: 7 " + testToken
	if r := readAllWays(t, src, 0, 0, req(h, h)); r.status != 400 {
		t.Errorf("repeated: %v; want 400", r)
	}
}

// TestHTTPReaderReuse reads different requests with one reader, Reset
// between them, as a pooled reader is used.
func TestHTTPReaderReuse(t *testing.T) {
	var h HTTPReader
	h.Init(mustSource(t, "http-query:room"), 0, 0)
	for i, c := range []struct{ req, key string }{
		{"GET /?room=one HTTP/1.1\r\n\r\n", "one"},
		{"GET /?x=1 HTTP/1.1\r\nSubordinate-Direct: 3 " + testToken + "\r\n\r\n", noKey},
		{"GET /?room=%zz HTTP/1.1\r\n\r\n", ""},
		{"GET /?room=three HTTP/1.1\r\n\r\n", "three"},
		{"GET /?room=four&room=x HTTP/1.1\r\n\r\n", "four"},
	} {
		h.Reset()
		r := feedHTTP(t, &h, []byte(c.req), nil)
		switch {
		case c.key == "":
			if r.status != 400 {
				t.Errorf("%d: %v; want 400", i, r)
			}
		case c.key == noKey && (r.hasKey || !r.direct), c.key != noKey && (r.key != c.key || r.direct):
			t.Errorf("%d: %v; want %q", i, r, c.key)
		}
	}
	// Init again with another source.
	h.Init(mustSource(t, "http-path:1"), 0, 0)
	if r := feedHTTP(t, &h, []byte("GET /a/b HTTP/1.1\r\n\r\n"), nil); r.key != "a" {
		t.Errorf("after Init: %v; want a", r)
	}
}

func TestHTTPReaderInitPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Init with the frame source did not panic")
		}
	}()
	var h HTTPReader
	h.Init(Source{Kind: Frame}, 0, 0)
}

// TestHTTPReaderNetHTTPWrite reads requests that net/http writes.
func TestHTTPReaderNetHTTPWrite(t *testing.T) {
	keys := []string{"lobby", "café", "a b", "a/b", "x+y", "100%", "k;=&?#", strings.Repeat("z", 300)}
	for _, key := range keys {
		for _, spec := range []string{"http-header:X-Room", "http-cookie:sid", "http-path:2", "http-query:room"} {
			for _, proxy := range []bool{false, true} {
				u := "http://example.com/rooms/" + url.PathEscape(key) + "/ws?" + url.Values{"a": {"1"}, "room": {key}}.Encode()
				req, err := http.NewRequest("POST", u, strings.NewReader("hello"))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("X-Room", key)
				req.Header.Set("User-Agent", "test")
				req.AddCookie(&http.Cookie{Name: "theme", Value: "dark"})
				// net/http drops (and logs) the bytes a cookie value
				// cannot hold: leave them out.
				cookie := ""
				for _, c := range []byte(key) {
					if validCookieValue([]byte{c}) {
						cookie += string(c)
					}
				}
				req.AddCookie(&http.Cookie{Name: "sid", Value: cookie})
				var buf bytes.Buffer
				if proxy {
					err = req.WriteProxy(&buf)
				} else {
					err = req.Write(&buf)
				}
				if err != nil {
					t.Fatal(err)
				}
				want := key
				if spec == "http-cookie:sid" {
					want = cookie
				}
				r := readAllWays(t, mustSource(t, spec), 0, 0, buf.Bytes())
				if !r.done || r.key != want {
					t.Errorf("%s, key %q, proxy %v: %v; want key %q in\n%s", spec, key, proxy, r, want, buf.Bytes())
				}
				if end := bytes.Index(buf.Bytes(), []byte("\r\n\r\n")) + 4; r.headLen != end {
					t.Errorf("HeadLen = %d, want %d", r.headLen, end)
				}
			}
		}
	}
}

// browserRequest is what a browser sends to open a WebSocket in a room.
const browserRequest = "GET /rooms/lobby/ws?user=alice HTTP/1.1\r\n" +
	"Host: chat.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Connection: keep-alive, Upgrade\r\n" +
	"Cookie: _ga=GA1.1.123456789.1700000000; theme=dark; session=3f2a9c1e7b5d4a60b8e1f2c3d4e5f607; lang=en\r\n" +
	"Upgrade: websocket\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-Fetch-Mode: websocket\r\n" +
	"Pragma: no-cache\r\n" +
	"\r\n"

var browserSpecs = map[string]string{
	"http-cookie:session":    "3f2a9c1e7b5d4a60b8e1f2c3d4e5f607",
	"http-header:User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
	"http-path:2":            "lobby",
	"http-query:user":        "alice",
}

func TestHTTPReaderAllocs(t *testing.T) {
	buf := []byte(browserRequest)
	for spec, want := range browserSpecs {
		var h HTTPReader
		h.Init(mustSource(t, spec), 0, 0)
		allocs := testing.AllocsPerRun(100, func() {
			h.Reset()
			if done, err := h.Feed(buf); !done || err != nil || string(h.Key()) != want {
				t.Fatalf("%s: %v, %v, key %q; want %q", spec, done, err, h.Key(), want)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per request; want 0", spec, allocs)
		}
	}
}

func BenchmarkHTTPReader(b *testing.B) {
	buf := []byte(browserRequest)
	for _, spec := range []string{"http-cookie:session", "http-path:2"} {
		b.Run(spec, func(b *testing.B) {
			var h HTTPReader
			h.Init(mustSource(b, spec), 0, 0)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				h.Reset()
				if done, err := h.Feed(buf); !done || err != nil || h.Key() == nil {
					b.Fatal(done, err)
				}
			}
		})
	}
}

func TestHTTPError(t *testing.T) {
	var h HTTPReader
	h.Init(mustSource(t, "http-path:1"), 64, 8)
	_, err := h.Feed([]byte("GET /" + strings.Repeat("a", 100)))
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 414 || !strings.Contains(err.Error(), "414") || !strings.Contains(he.Reason, "64 bytes") {
		t.Errorf("error %v; want a 414 that names the bound", err)
	}
}

func TestHTTPResponse(t *testing.T) {
	for _, c := range []struct {
		status int
		reason string
		body   string
	}{
		{400, "malformed request line", "malformed request line\n"},
		{408, "", "\n"},
		{414, "request line longer than 16384 bytes", "request line longer than 16384 bytes\n"},
		{431, "x", "x\n"},
		{503, "shard 3 unavailable", "shard 3 unavailable\n"},
		{400, "evil\r\nSet-Cookie: a=b\r\n\r\nHTTP/1.1 200 OK", "evil  Set-Cookie: a=b    HTTP/1.1 200 OK\n"},
		{400, "bad \xff utf-8 \x00\x7f", "bad \uFFFD utf-8   \n"},
		{400, strings.Repeat("é", 300), strings.Repeat("é", 256) + "\n"},
		{799, "odd", "odd\n"},
		{42, "bad status", "bad status\n"},
	} {
		prefix := []byte("earlier")
		out := HTTPResponse(prefix, c.status, c.reason)
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("HTTPResponse did not append to dst")
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out[len(prefix):])), nil)
		if err != nil {
			t.Fatalf("%d %q: %v in %q", c.status, c.reason, err, out)
		}
		body := new(bytes.Buffer)
		if _, err := body.ReadFrom(resp.Body); err != nil {
			t.Fatal(err)
		}
		wantStatus := c.status
		if c.status < 100 {
			wantStatus = 500
		}
		if resp.StatusCode != wantStatus || body.String() != c.body || !resp.Close ||
			resp.ContentLength != int64(len(c.body)) || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" ||
			len(resp.Header) != 2 || !bytes.Contains(out, []byte("\r\nConnection: close\r\n")) || resp.ProtoMinor != 1 {
			t.Errorf("%d %q: got %s %v body %q, header %v; want body %q", c.status, c.reason, resp.Status, resp.Close, body, resp.Header, c.body)
		}
		text := http.StatusText(wantStatus)
		if text == "" {
			text = "Error"
		}
		if resp.Status != strconv.Itoa(wantStatus)+" "+text {
			t.Errorf("status line %q; want %d %s", resp.Status, wantStatus, text)
		}
	}
}
