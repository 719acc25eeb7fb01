package keysrc

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// KeyOf returns the key a connection gets from this source when the
// thing it reads is input, as an operator would write it: for frame, a
// header or a cookie, the key itself; for sni, a host name; for
// client-ip, an IP address; for http-path, a path or URL
// ("/rooms/lobby/ws", "https://chat.example/rooms/lobby"); for
// http-query, a URL or a query ("?room=lobby"). The HTTP kinds are read
// by the same HTTPReader that reads requests, so the answer is the
// server's. A nil key with a nil error means the input has none.
func (s Source) KeyOf(input string, maxKey int) ([]byte, error) {
	switch s.Kind {
	case SNI:
		return normalizeHost([]byte(input)), nil
	case ClientIP:
		a, err := netip.ParseAddr(strings.Trim(input, "[]"))
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address", input)
		}
		return s.ClientIPKey(a), nil
	case HTTPPath, HTTPQuery:
		target := input
		if i := strings.Index(target, "://"); i >= 0 {
			// An absolute URL: the request target is what follows the
			// authority.
			rest := target[i+3:]
			if j := strings.IndexAny(rest, "/?"); j >= 0 {
				target = rest[j:]
			} else {
				target = "/"
			}
		}
		if strings.HasPrefix(target, "?") {
			target = "/" + target
		}
		return s.keyOfRequest("GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n", maxKey)
	case HTTPHeader:
		return s.keyOfRequest("GET / HTTP/1.1\r\nHost: x\r\n"+s.Name+": "+input+"\r\n\r\n", maxKey)
	case HTTPCookie:
		return s.keyOfRequest("GET / HTTP/1.1\r\nHost: x\r\nCookie: "+s.Name+"="+input+"\r\n\r\n", maxKey)
	}
	if input == "" {
		return nil, errors.New("empty key")
	}
	return []byte(input), nil
}

// keyOfRequest reads the key of an HTTP source from a whole request head.
func (s Source) keyOfRequest(head string, maxKey int) ([]byte, error) {
	var h HTTPReader
	h.Init(s, len(head)+1, maxKey)
	done, err := h.Feed([]byte(head))
	if err != nil {
		return nil, err
	}
	if !done {
		return nil, errors.New("incomplete request")
	}
	if k := h.Key(); k != nil {
		return append([]byte(nil), k...), nil
	}
	return nil, nil
}

// normalizeHost returns a server name as a key: in lower case, without
// a trailing dot.
func normalizeHost(b []byte) []byte {
	b = []byte(strings.ToLower(strings.TrimSuffix(string(b), ".")))
	if len(b) == 0 {
		return nil
	}
	return b
}
