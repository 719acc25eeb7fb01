package keysrc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind is where a connection's key comes from.
type Kind uint8

// The kinds of Source.
const (
	// Frame is Subordinate's preamble (docs/PROTOCOL.md), the default.
	Frame Kind = iota
	// SNI is the server name of the TLS ClientHello, read before the
	// handshake: the owner terminates TLS.
	SNI
	// ClientIP is the client's IP address, or its network with a prefix.
	ClientIP
	// HTTPHeader, HTTPCookie, HTTPPath and HTTPQuery take the key from
	// the head of the connection's first HTTP/1.x request.
	HTTPHeader
	HTTPCookie
	HTTPPath
	HTTPQuery
)

// Source is a parsed --key-from value.
type Source struct {
	Kind Kind
	// Name is the header, cookie or query parameter of the HTTP kinds.
	Name string
	// Segment is HTTPPath's path segment, counted from 1.
	Segment int
	// Bits4 and Bits6 are ClientIP's prefix lengths for IPv4 and IPv6
	// addresses (32 and 128: the whole address).
	Bits4, Bits6 int
}

// ErrSpec is wrapped by the errors of Parse.
var ErrSpec = errors.New("keysrc: bad key source")

// Parse parses a --key-from value:
//
//	frame                   the preamble (default; "" means frame too)
//	sni                     the TLS server name (tls:// listeners)
//	client-ip               the client's address
//	client-ip/24            its IPv4 /24 network (IPv6 addresses whole)
//	client-ip/24,64         /24 for IPv4, /64 for IPv6
//	http-header:NAME        a request header
//	http-cookie:NAME        a cookie
//	http-path:N             the N-th segment of the path, from 1
//	http-query:NAME         a query parameter
func Parse(spec string) (Source, error) {
	kind, arg, hasArg := strings.Cut(spec, ":")
	bad := func(format string, a ...any) (Source, error) {
		return Source{}, fmt.Errorf("%w %q: %s", ErrSpec, spec, fmt.Sprintf(format, a...))
	}
	needName := func(k Kind) (Source, error) {
		if !hasArg || arg == "" {
			return bad("want %s:NAME", kind)
		}
		if len(arg) > MaxNameLen {
			return bad("a name of %d bytes, over %d", len(arg), MaxNameLen)
		}
		if !validToken(arg) {
			return bad("%q is not a valid name", arg)
		}
		return Source{Kind: k, Name: arg}, nil
	}
	switch {
	case spec == "" || spec == "frame":
		return Source{Kind: Frame}, nil
	case spec == "sni":
		return Source{Kind: SNI}, nil
	case kind == "http-header":
		return needName(HTTPHeader)
	case kind == "http-cookie":
		return needName(HTTPCookie)
	case kind == "http-query":
		if !hasArg || arg == "" {
			return bad("want http-query:NAME")
		}
		if len(arg) > MaxNameLen {
			return bad("a name of %d bytes, over %d", len(arg), MaxNameLen)
		}
		return Source{Kind: HTTPQuery, Name: arg}, nil
	case kind == "http-path":
		n, err := strconv.Atoi(arg)
		if !hasArg || err != nil || n < 1 || n > 64 {
			return bad("want http-path:N, N from 1 to 64")
		}
		return Source{Kind: HTTPPath, Segment: n}, nil
	case spec == "client-ip" || strings.HasPrefix(spec, "client-ip/"):
		s := Source{Kind: ClientIP, Bits4: 32, Bits6: 128}
		if p, ok := strings.CutPrefix(spec, "client-ip/"); ok {
			v4, v6, two := strings.Cut(p, ",")
			var err error
			if s.Bits4, err = strconv.Atoi(v4); err != nil || s.Bits4 < 0 || s.Bits4 > 32 {
				return bad("IPv4 prefix %q: want 0 to 32", v4)
			}
			if two {
				if s.Bits6, err = strconv.Atoi(v6); err != nil || s.Bits6 < 0 || s.Bits6 > 128 {
					return bad("IPv6 prefix %q: want 0 to 128", v6)
				}
			}
		}
		return s, nil
	}
	return bad("want frame, sni, client-ip[/N[,M]], http-header:NAME, http-cookie:NAME, http-path:N or http-query:NAME")
}

// MaxNameLen bounds the NAME of http-header, http-cookie and http-query:
// no real header, cookie or parameter name comes near it, and it keeps
// what a load generator or a test builds from it bounded.
const MaxNameLen = 256

// String returns the Source as Parse accepts it.
func (s Source) String() string {
	switch s.Kind {
	case SNI:
		return "sni"
	case ClientIP:
		switch {
		case s.Bits6 != 128:
			return fmt.Sprintf("client-ip/%d,%d", s.Bits4, s.Bits6)
		case s.Bits4 != 32:
			return fmt.Sprintf("client-ip/%d", s.Bits4)
		}
		return "client-ip"
	case HTTPHeader:
		return "http-header:" + s.Name
	case HTTPCookie:
		return "http-cookie:" + s.Name
	case HTTPPath:
		return "http-path:" + strconv.Itoa(s.Segment)
	case HTTPQuery:
		return "http-query:" + s.Name
	}
	return "frame"
}

// HTTP reports whether the key comes from an HTTP request.
func (s Source) HTTP() bool { return s.Kind >= HTTPHeader }

// BeforeTLS reports whether the key is known before a TLS handshake, so
// that the owner, not the accepting worker, terminates TLS.
func (s Source) BeforeTLS() bool { return s.Kind == SNI || s.Kind == ClientIP }

// validToken reports whether s is an HTTP token (RFC 9110, 5.6.2): what
// a header or cookie name may be.
func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return s != ""
}
