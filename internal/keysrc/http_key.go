package keysrc

import "bytes"

// This file takes the key out of a request head's parts for HTTPReader:
// the request target's path and query, and the Cookie headers.

// splitTarget returns the path and the query of a request target, ok
// false if the target is none of origin-form ("/p?q"), absolute-form
// ("scheme://authority/p?q", "scheme:/p?q" or "scheme:opaque?q"), "*",
// or (connect) authority-form. The path is nil if the target has none
// ("*", authority-form, no path after the authority, an opaque part),
// the query nil if it has none. As in net/url, the query starts at the
// first '?' and the authority ends at the first '/'.
func splitTarget(connect bool, target []byte) (path, query []byte, ok bool) {
	if target[0] == '/' {
		path, query, _ = bytes.Cut(target, []byte{'?'})
		return path, query, true
	}
	if string(target) == "*" || connect {
		return nil, nil, true
	}
	// A scheme (RFC 3986 3.1) and its colon, else the target is invalid.
	i := 0
	for ; i < len(target) && target[i] != ':'; i++ {
		c := target[i] | 0x20
		if !('a' <= c && c <= 'z' || i > 0 && ('0' <= target[i] && target[i] <= '9' || target[i] == '+' || target[i] == '-' || target[i] == '.')) {
			return nil, nil, false
		}
	}
	if i == 0 || i == len(target) {
		return nil, nil, false
	}
	rest, query, _ := bytes.Cut(target[i+1:], []byte{'?'})
	switch {
	case bytes.HasPrefix(rest, []byte("//")):
		if j := bytes.IndexByte(rest[2:], '/'); j >= 0 {
			path = rest[2+j:]
		}
	case len(rest) > 0 && rest[0] == '/':
		path = rest
	}
	return path, query, true
}

// pathKey makes segment h.src.Segment of path the key: the path split at
// each '/', the segment then percent-decoded as url.PathUnescape does.
func (h *HTTPReader) pathKey(path []byte) *HTTPError {
	if len(path) == 0 {
		return nil
	}
	seg := path[1:] // path starts with '/'
	for n := 1; ; n++ {
		j := bytes.IndexByte(seg, '/')
		if n == h.src.Segment {
			if j >= 0 {
				seg = seg[:j]
			}
			break
		}
		if j < 0 {
			return nil
		}
		seg = seg[j+1:]
	}
	h.found = true
	return h.unescapeKey(seg, false, errHTTPPathEscape)
}

// queryKey makes the value of the first parameter named h.src.Name in
// query the key, reading the query as url.ParseQuery does.
func (h *HTTPReader) queryKey(query []byte) *HTTPError {
	for len(query) > 0 {
		var pair []byte
		pair, query, _ = bytes.Cut(query, []byte{'&'})
		if len(pair) == 0 || bytes.IndexByte(pair, ';') >= 0 {
			continue
		}
		name, value, _ := bytes.Cut(pair, []byte{'='})
		if unescapedEqual(name, h.src.Name) {
			h.found = true
			return h.unescapeKey(value, true, errHTTPQueryEscape)
		}
	}
	return nil
}

// cookieKey makes the value of the first cookie named h.src.Name in one
// Cookie header's value the key, reading it as net/http's readCookies
// does (see HTTPReader).
func (h *HTTPReader) cookieKey(line []byte) *HTTPError {
	for len(line) > 0 {
		var part []byte
		part, line, _ = bytes.Cut(line, []byte{';'})
		name, value, _ := bytes.Cut(trimOWS(part), []byte{'='})
		if string(trimOWS(name)) != h.src.Name {
			continue
		}
		if len(value) > 1 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		if !validCookieValue(value) {
			continue
		}
		h.found = true
		return h.setKey(value)
	}
	return nil
}

// validCookieValue reports whether net/http accepts v as a cookie's value.
func validCookieValue(v []byte) bool {
	for _, c := range v {
		if c < 0x20 || c >= 0x7f || c == '"' || c == ';' || c == '\\' {
			return false
		}
	}
	return true
}

// unescapeKey makes raw, percent-decoded, the key; plus decodes '+' as a
// space (url.QueryUnescape), else it stays (url.PathUnescape). A '%' not
// followed by two hex digits is refused with bad.
func (h *HTTPReader) unescapeKey(raw []byte, plus bool, bad *HTTPError) *HTTPError {
	k := h.key[:0]
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '%':
			if i+2 >= len(raw) || httpUnhex(raw[i+1]) > 0xf || httpUnhex(raw[i+2]) > 0xf {
				return bad
			}
			c = httpUnhex(raw[i+1])<<4 | httpUnhex(raw[i+2])
			i += 2
		case c == '+' && plus:
			c = ' '
		}
		if len(k) == h.maxKey {
			return h.errKeyLong
		}
		k = append(k, c)
	}
	h.key = k
	return nil
}

// unescapedEqual reports whether raw, decoded as url.QueryUnescape does,
// is s; it is false if raw is not validly encoded.
func unescapedEqual(raw []byte, s string) bool {
	j := 0
	eq := true
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '%':
			if i+2 >= len(raw) || httpUnhex(raw[i+1]) > 0xf || httpUnhex(raw[i+2]) > 0xf {
				return false
			}
			c = httpUnhex(raw[i+1])<<4 | httpUnhex(raw[i+2])
			i += 2
		case '+':
			c = ' '
		}
		eq = eq && j < len(s) && s[j] == c
		j++
	}
	return eq && j == len(s)
}

// httpUnhex returns the value of the hex digit c, or 0xff.
func httpUnhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}
