package keysrc

import (
	"bytes"
	"encoding/hex"
	"strconv"

	"github.com/subordinate/subordinate/frame"
)

// DefaultMaxHead is the default bound on an HTTP request head: the request
// line, the header lines and the empty line that ends them.
const DefaultMaxHead = 16 << 10

// DirectHeader is the request header of direct routing over HTTP:
//
//	Subordinate-Direct: <shard index in decimal> <64 hex digits of the token>
//
// the same shard index and token as the line preamble's direct form
// ("!<shard> <hex>", docs/PROTOCOL.md section 2). HTTPReader only parses
// it; the server checks the token with frame.VerifyDirect.
const DirectHeader = "Subordinate-Direct"

// HTTPError is a request head that HTTPReader refuses: Status is the HTTP
// status to answer with (400, 414 or 431) and Reason says why, in words
// that never contain the client's bytes.
type HTTPError struct {
	Status int
	Reason string
}

// Error returns the status and the reason.
func (e *HTTPError) Error() string {
	return "keysrc: HTTP request refused with " + strconv.Itoa(e.Status) + ": " + e.Reason
}

// The refusals that do not depend on a reader's bounds. They are shared
// and must not be modified.
var (
	errHTTPEmptyLine   = &HTTPError{400, "empty request line"}
	errHTTPRequestLine = &HTTPError{400, "malformed request line"}
	errHTTPMethod      = &HTTPError{400, "invalid method"}
	errHTTPVersion     = &HTTPError{400, "unsupported HTTP version: want HTTP/1.1 or HTTP/1.0"}
	errHTTP2           = &HTTPError{400, "HTTP/2 with prior knowledge is not supported: use HTTP/1.1"}
	errHTTPTarget      = &HTTPError{400, "invalid request target"}
	errHTTPNUL         = &HTTPError{400, "NUL byte in the request head"}
	errHTTPControl     = &HTTPError{400, "control character in the request head"}
	errHTTPBareCR      = &HTTPError{400, "CR not followed by LF in the request head"}
	errHTTPFold        = &HTTPError{400, "header line starts with whitespace (obsolete line folding)"}
	errHTTPNoColon     = &HTTPError{400, "header line without a colon"}
	errHTTPName        = &HTTPError{400, "invalid header name"}
	errHTTPNameSpace   = &HTTPError{400, "whitespace between a header name and its colon"}
	errHTTPDirect      = &HTTPError{400, "malformed " + DirectHeader + " header: want <shard> <64 hex digits>"}
	errHTTPDirect2     = &HTTPError{400, "repeated " + DirectHeader + " header"}
	errHTTPPathEscape  = &HTTPError{400, "invalid percent-encoding in the key's path segment"}
	errHTTPQueryEscape = &HTTPError{400, "invalid percent-encoding in the key's query parameter"}
)

// HTTPReader finds a connection's key in the head of its first HTTP/1.x
// request, for a Source of an HTTP kind. It is pure and incremental: Feed
// is given everything received so far, each time a longer prefix of the
// same bytes, and reads each byte once, so a head that arrives one byte
// at a time costs O(n) in all. It consumes nothing: the whole request,
// byte for byte, is still the owner's handler's to read.
//
// It reads no more than the head, and checks its syntax (RFC 9112) no
// further than routing needs, strictly where a lax reading could be
// abused and leniently where clients differ:
//
//   - The request line is method SP request-target SP version with single
//     spaces; the method is a token and the version HTTP/1.1 or HTTP/1.0.
//     Leading empty lines are refused (net/http refuses them too), as is
//     HTTP/2's prior-knowledge preface "PRI * HTTP/2.0".
//   - Lines end with CRLF or a bare LF (RFC 9112 2.2). A CR elsewhere, a
//     NUL or another control character but HTAB (in header values) is
//     refused; bytes from 0x80 are accepted (obs-text, raw UTF-8 paths).
//   - A header line is name ":" value. A name is a token with nothing
//     between it and the colon (RFC 9112 5.1); a line that starts with
//     whitespace (obsolete line folding, RFC 9112 5.2) is refused. Names
//     are compared without regard to case; of repeated headers the first
//     is the key's.
//   - The request target is origin-form ("/a/b?x"), absolute-form
//     ("http://host/a/b?x"), "*", or, for CONNECT, authority-form. Only
//     the part that holds the key is decoded and checked; the rest of the
//     target, Content-Length, Transfer-Encoding and Host are the owner's
//     handler's business (Subordinate never delimits messages, so it has
//     no framing of its own to disagree with).
//
// The key, for each kind (an empty key is no key: Key returns nil):
//
//   - HTTPHeader: the first header of that name, its value trimmed of
//     spaces and tabs.
//   - HTTPCookie: the first cookie of that name (case-sensitive) in the
//     Cookie headers, read as net/http's Request.Cookie reads them: pairs
//     split at ';' and trimmed, a value in double quotes loses them, and a
//     pair whose name is not a token or whose value has a byte outside
//     0x20-0x7e, '"', ';' or '\' is skipped.
//   - HTTPPath: segment N of the path, the path split at every '/' (so
//     "/a//b" has an empty segment 2 and no key for it), then
//     percent-decoded as url.PathUnescape does ("%2F" stays inside the
//     segment). "*", authority-form and an absolute-form target without a
//     path have no segments.
//   - HTTPQuery: the value of the first parameter of that name in the
//     query (after the first '?'), read as url.ParseQuery reads it: pairs
//     split at '&', names and values decoded as url.QueryUnescape does
//     ('+' is a space), a pair that contains ';' or whose name is badly
//     encoded is skipped. Unlike url.ParseQuery, a badly encoded value of
//     the key's own parameter is refused rather than skipped.
//
// A key longer than maxKey bytes (decoded) is refused with 400. The head
// is bounded by maxHead: a request line that does not end within it is
// refused with 414, a head that does not with 431.
//
// The zero HTTPReader is not ready: call Init. It is meant to be pooled:
// Reset keeps its buffers, and in steady state Feed allocates nothing.
type HTTPReader struct {
	src     Source
	maxHead int
	maxKey  int
	hname   string // the header that holds the key: src.Name, "Cookie" or ""

	errKeyLong, errLineLong, errHeadLong *HTTPError

	// The state of the connection's head.
	pos      int  // where the line being read starts
	scan     int  // where the next Feed resumes: every byte before it is checked
	nline    int  // complete lines read
	inMethod bool // on the request line, before its first space
	done     bool
	headLen  int
	err      error

	found  bool   // the key's place was seen (first wins), key may be empty
	key    []byte // the key, decoded; its array is reused
	direct bool
	shard  uint32
	token  frame.Token
}

// Init readies h for src, which must be of an HTTP kind, with a bound of
// maxHead bytes on the request head (0: DefaultMaxHead) and of maxKey on
// the key's decoded length (0: frame.DefaultMaxKey).
func (h *HTTPReader) Init(src Source, maxHead, maxKey int) {
	if !src.HTTP() {
		panic("keysrc: HTTPReader.Init with " + src.String() + ", not an HTTP source")
	}
	if maxHead <= 0 {
		maxHead = DefaultMaxHead
	}
	if maxKey <= 0 {
		maxKey = frame.DefaultMaxKey
	}
	key := h.key[:0]
	*h = HTTPReader{src: src, maxHead: maxHead, maxKey: maxKey, key: key}
	switch src.Kind {
	case HTTPHeader:
		h.hname = src.Name
	case HTTPCookie:
		h.hname = "Cookie"
	}
	h.errKeyLong = &HTTPError{400, "key longer than " + strconv.Itoa(maxKey) + " bytes"}
	h.errLineLong = &HTTPError{414, "request line longer than " + strconv.Itoa(maxHead) + " bytes"}
	h.errHeadLong = &HTTPError{431, "request head longer than " + strconv.Itoa(maxHead) + " bytes"}
	h.Reset()
}

// Reset readies h for another connection with the same source and bounds,
// keeping its buffers.
func (h *HTTPReader) Reset() {
	h.pos, h.scan, h.nline = 0, 0, 0
	h.inMethod = true
	h.done, h.headLen, h.err = false, 0, nil
	h.found, h.key = false, h.key[:0]
	h.direct, h.shard, h.token = false, 0, frame.Token{}
}

// Feed reads the head of the request in buf, which holds every byte the
// connection has received so far: each call's buf must extend the
// previous one's. It returns done once the head has been read through its
// empty line, and an *HTTPError if the head is refused. Once either is
// returned, Feed returns it again. Bytes after the head are not looked at.
func (h *HTTPReader) Feed(buf []byte) (done bool, err error) {
	if h.done || h.err != nil {
		return h.done, h.err
	}
	b := buf[:min(len(buf), h.maxHead)]
	i := h.scan
	if h.inMethod {
		// Fail fast on what is not HTTP (a TLS ClientHello, binary
		// junk) instead of waiting for a newline or the bound.
		for ; i < len(b) && httpClass[b[i]] == httpToken; i++ {
		}
		if i < len(b) {
			switch c := b[i]; {
			case c == ' ' && i > 0:
				h.inMethod = false
				i++
			case c == ' ':
				return h.fail(errHTTPRequestLine)
			case c != '\r' && c != '\n':
				return h.fail(errHTTPMethod)
			}
			// At a line ending, the request line is read below and
			// refused for want of a space.
		}
	}
	for i < len(b) {
		cls := httpClass[b[i]]
		if cls <= httpToken {
			i++
			continue
		}
		switch cls {
		case httpLF:
			end := i
			if end > h.pos && b[end-1] == '\r' {
				end--
			}
			if err := h.line(b[h.pos:end]); err != nil {
				return h.fail(err)
			}
			h.pos = i + 1
			if h.done {
				h.headLen, h.scan = i+1, i+1
				return true, nil
			}
		case httpCR:
			if i+1 == len(b) {
				// Wait for the next byte, which must be LF.
				h.scan = i
				return h.bounded(len(b))
			}
			if b[i+1] != '\n' {
				return h.fail(errHTTPBareCR)
			}
		case httpNUL:
			return h.fail(errHTTPNUL)
		case httpCTL:
			return h.fail(errHTTPControl)
		}
		i++
	}
	h.scan = i
	return h.bounded(len(b))
}

// bounded returns what Feed returns when the head has not ended within
// buf[:limit]: a refusal if buf has reached the bound, else not done.
func (h *HTTPReader) bounded(limit int) (bool, error) {
	if limit < h.maxHead {
		return false, nil
	}
	if h.nline == 0 {
		return h.fail(h.errLineLong)
	}
	return h.fail(h.errHeadLong)
}

func (h *HTTPReader) fail(err *HTTPError) (bool, error) {
	h.err = err
	return false, err
}

// Key returns the key once Feed is done, or nil if the request has none
// (no such header, cookie or parameter, an empty one, a path too short).
// The caller then uses a default key or refuses the connection. The bytes
// are h's until the next Reset or Init: copy them to keep them.
func (h *HTTPReader) Key() []byte {
	if !h.done || len(h.key) == 0 {
		return nil
	}
	return h.key
}

// Direct returns the shard index and token of the request's DirectHeader,
// with ok false if it has none (or Feed is not done). The token is not
// verified: that is frame.VerifyDirect's job, with the server's secret.
func (h *HTTPReader) Direct() (shard uint32, token frame.Token, ok bool) {
	if !h.done || !h.direct {
		return 0, frame.Token{}, false
	}
	return h.shard, h.token, true
}

// HeadLen returns the length of the request head once Feed is done: the
// request line, the headers and the empty line, with their line endings.
func (h *HTTPReader) HeadLen() int {
	if !h.done {
		return 0
	}
	return h.headLen
}

// line reads one complete line of the head, without its line ending.
func (h *HTTPReader) line(l []byte) *HTTPError {
	h.nline++
	if h.nline == 1 {
		return h.requestLine(l)
	}
	if len(l) == 0 {
		h.done = true
		return nil
	}
	return h.headerLine(l)
}

// requestLine reads method SP request-target SP HTTP-version. The method
// has been checked by Feed, and the line holds no control character but
// HTAB.
func (h *HTTPReader) requestLine(l []byte) *HTTPError {
	if len(l) == 0 {
		return errHTTPEmptyLine
	}
	sp := bytes.IndexByte(l, ' ')
	if sp <= 0 {
		return errHTTPRequestLine
	}
	method, rest := l[:sp], l[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return errHTTPRequestLine
	}
	target, version := rest[:sp], rest[sp+1:]
	if string(version) != "HTTP/1.1" && string(version) != "HTTP/1.0" {
		if string(method) == "PRI" && string(target) == "*" && string(version) == "HTTP/2.0" {
			return errHTTP2
		}
		return errHTTPVersion
	}
	if bytes.IndexByte(target, '\t') >= 0 {
		return errHTTPTarget
	}
	path, query, ok := splitTarget(string(method) == "CONNECT", target)
	if !ok {
		return errHTTPTarget
	}
	switch h.src.Kind {
	case HTTPPath:
		return h.pathKey(path)
	case HTTPQuery:
		return h.queryKey(query)
	}
	return nil
}

// headerLine reads name ":" OWS value OWS.
func (h *HTTPReader) headerLine(l []byte) *HTTPError {
	if l[0] == ' ' || l[0] == '\t' {
		return errHTTPFold
	}
	colon := bytes.IndexByte(l, ':')
	if colon < 0 {
		return errHTTPNoColon
	}
	name := l[:colon]
	for i, c := range name {
		if httpClass[c] != httpToken {
			if (c == ' ' || c == '\t') && i > 0 {
				return errHTTPNameSpace
			}
			return errHTTPName
		}
	}
	if len(name) == 0 {
		return errHTTPName
	}
	value := trimOWS(l[colon+1:])
	if !h.found && h.hname != "" && equalFoldASCII(name, h.hname) {
		if h.src.Kind == HTTPCookie {
			if err := h.cookieKey(value); err != nil {
				return err
			}
		} else {
			h.found = true
			if err := h.setKey(value); err != nil {
				return err
			}
		}
	}
	if equalFoldASCII(name, DirectHeader) {
		if h.direct {
			return errHTTPDirect2
		}
		if !h.parseDirect(value) {
			return errHTTPDirect
		}
		h.direct = true
	}
	return nil
}

// setKey makes v the key.
func (h *HTTPReader) setKey(v []byte) *HTTPError {
	if len(v) > h.maxKey {
		return h.errKeyLong
	}
	h.key = append(h.key[:0], v...)
	return nil
}

// parseDirect reads DirectHeader's value: a shard index in decimal, without
// a sign or leading zeros, below 2^32, one space and 64 hex digits.
func (h *HTTPReader) parseDirect(v []byte) bool {
	sp := bytes.IndexByte(v, ' ')
	if sp <= 0 || sp > 10 || (v[0] == '0' && sp > 1) || len(v)-sp-1 != 2*frame.TokenSize {
		return false
	}
	var n uint64
	for _, c := range v[:sp] {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<32-1 {
		return false
	}
	if _, err := hex.Decode(h.token[:], v[sp+1:]); err != nil {
		return false
	}
	h.shard = uint32(n)
	return true
}

// The classes of bytes in a request head.
const (
	httpOther = iota // allowed in values and targets: SP, HTAB, VCHAR but tokens', obs-text
	httpToken        // tchar (RFC 9110 5.6.2)
	httpLF
	httpCR
	httpNUL
	httpCTL // the other control characters, and DEL
)

var httpClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == '\n':
			t[c] = httpLF
		case c == '\r':
			t[c] = httpCR
		case c == 0:
			t[c] = httpNUL
		case c == '\t':
			t[c] = httpOther
		case c < ' ' || c == 0x7f:
			t[c] = httpCTL
		case c > ' ' && c < 0x7f && validToken(string(rune(c))):
			t[c] = httpToken
		}
	}
	return t
}()

// trimOWS trims spaces and tabs from both ends of b.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFoldASCII reports whether b and s are equal without regard to the
// case of ASCII letters.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z' {
			return false
		}
	}
	return true
}
