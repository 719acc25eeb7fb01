package keysrc

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
)

// fuzzHTTPSpecs are the sources FuzzHTTPReader reads with; the key names
// appear in its seeds.
var fuzzHTTPSpecs = []string{
	"http-header:X-Key", "http-cookie:sid", "http-path:1", "http-path:2",
	"http-query:k", "http-query:a b",
}

// FuzzHTTPReader feeds arbitrary bytes to an HTTPReader whole and in
// random pieces, and checks that both give the same answer and that a
// head it accepts is one net/http accepts too, with the same key, except
// where their rules differ on purpose (see netHTTPDifference).
func FuzzHTTPReader(f *testing.F) {
	for i, s := range []string{
		browserRequest,
		"GET / HTTP/1.1\r\nHost: a\r\nX-Key: lobby\r\n\r\n",
		"GET / HTTP/1.1\nx-key:  a b \nX-Key: c\n\n",
		"GET / HTTP/1.1\r\nCookie: a=1; sid=\"abc\"\r\nCookie: sid=2\r\n\r\n",
		"GET / HTTP/1.1\r\nCookie: sid=a\\b;sid= x ; sid=y\r\n\r\n",
		"GET /rooms/caf%C3%A9/ws?k=1 HTTP/1.1\r\n\r\n",
		"GET /a%2Fb/c?k=%41+b&k=2&a+b=%7e HTTP/1.0\r\n\r\n",
		"GET http://example.com:80/x/y?k=v HTTP/1.1\r\nHost: b\r\n\r\n",
		"GET http://example.com?k=v HTTP/1.1\r\n\r\n",
		"GET urn:x/y?k=v HTTP/1.1\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\n\r\n",
		"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
		"GET /?k=1;x=2&k=%zz HTTP/1.1\r\n\r\n",
		"GET /x HTTP/1.1\r\nSubordinate-Direct: 7 " + testToken + "\r\n\r\n",
		"POST /x HTTP/1.1\r\nContent-Length: 5\r\nX-Key: k\r\n\r\nhello",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\nX-Key: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nX-Key : a\r\n\r\n",
		"GET / HTTP/1.1\r\nX-Key: a\rb\r\n\r\n",
		"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
		"GET /" + strings.Repeat("a", 1100) + " HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\n" + strings.Repeat("X-A: b\r\n", 150) + "\r\n",
	} {
		f.Add([]byte(s), uint8(i), uint64(i*7919))
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8, split uint64) {
		src := mustSource(t, fuzzHTTPSpecs[int(which)%len(fuzzHTTPSpecs)])
		const maxHead, maxKey = 1024, 64
		var h HTTPReader
		h.Init(src, maxHead, maxKey)
		whole := feedHTTP(t, &h, data, nil)
		h.Reset()
		rng := split
		pieces := feedHTTP(t, &h, data, func() int {
			if split == 0 {
				return 1
			}
			rng ^= rng << 13
			rng ^= rng >> 7
			rng ^= rng << 17
			return int(rng%16) + 1
		})
		if whole != pieces {
			t.Fatalf("%q: whole: %v; in pieces: %v", data, whole, pieces)
		}
		switch {
		case whole.status != 0:
			if whole.status != 400 && whole.status != 414 && whole.status != 431 {
				t.Fatalf("%q: refused with %d", data, whole.status)
			}
			return
		case !whole.done:
			if len(data) >= maxHead {
				t.Fatalf("%q: not done with %d bytes", data, len(data))
			}
			return
		}
		if whole.headLen > maxHead || whole.headLen > len(data) {
			t.Fatalf("HeadLen %d of %d bytes, bound %d", whole.headLen, len(data), maxHead)
		}
		head := data[:whole.headLen]
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		diff := netHTTPDifference(head)
		if err != nil {
			if diff == "" {
				t.Fatalf("HTTPReader accepts %q, net/http refuses it: %v", head, err)
			}
			return
		}
		want, ok := netHTTPKey(src, req)
		if got := whole.key; ok && got != want {
			t.Fatalf("%s in %q: key %q, net/http's %q", src, head, got, want)
		}
	})
}

// netHTTPDifference returns why net/http may refuse a head that
// HTTPReader accepts, or "". HTTPReader checks only the part of the target
// that holds the key ("target"), and leaves message framing
// (Content-Length, Transfer-Encoding) and Host to the owner's handler.
func netHTTPDifference(head []byte) string {
	lines := strings.Split(strings.TrimRight(string(head), "\r\n"), "\n")
	method, rest, _ := strings.Cut(strings.TrimSuffix(lines[0], "\r"), " ")
	target, _, _ := strings.Cut(rest, " ")
	if method == "CONNECT" && !strings.HasPrefix(target, "/") {
		target = "http://" + target
	}
	if _, err := url.ParseRequestURI(target); err != nil {
		return "target"
	}
	hosts := 0
	for _, l := range lines[1:] {
		name, _, _ := strings.Cut(l, ":")
		switch textproto.CanonicalMIMEHeaderKey(name) {
		case "Content-Length", "Transfer-Encoding":
			return "framing"
		case "Host":
			if hosts++; hosts > 1 {
				return "host"
			}
		}
	}
	return ""
}

// netHTTPKey returns the key net/http and net/url find in req for src,
// ok false where HTTPReader's rules differ: a path with an encoded '/'
// (net/url decodes it before splitting, HTTPReader after), authority-form,
// and a query that url.ParseQuery finds errors in (it skips the pairs,
// HTTPReader refuses a badly encoded key).
func netHTTPKey(src Source, req *http.Request) (key string, ok bool) {
	switch src.Kind {
	case HTTPHeader:
		return req.Header.Get(src.Name), true
	case HTTPCookie:
		c, err := req.Cookie(src.Name)
		if err != nil {
			return "", true
		}
		return c.Value, true
	case HTTPPath:
		if strings.Contains(strings.ToLower(req.RequestURI), "%2f") || req.URL.Path == "*" ||
			req.Method == "CONNECT" && !strings.HasPrefix(req.RequestURI, "/") {
			return "", false
		}
		if segs := strings.Split(req.URL.Path, "/"); src.Segment < len(segs) {
			return segs[src.Segment], true
		}
		return "", true
	case HTTPQuery:
		if req.Method == "CONNECT" && !strings.HasPrefix(req.RequestURI, "/") {
			return "", false
		}
		v, err := url.ParseQuery(req.URL.RawQuery)
		return v.Get(src.Name), err == nil
	}
	return "", false
}
