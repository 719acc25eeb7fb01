package keysrc

import "fmt"

// parse reads a ClientHello's body (RFC 8446, 4.1.2; RFC 5246, 7.4.1.2)
// as far as its server_name extension (RFC 6066, 3), with the rules
// crypto/tls applies to it: one host_name at most, not empty, no
// trailing dot.
func (h *HelloReader) parse(b []byte) error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrMalformed, what) }
	c := cursor(b)
	if !c.skip(2 + 32) { // legacy_version, random
		return bad("short")
	}
	if sid, ok := c.vec8(); !ok || len(sid) > 32 {
		return bad("session id")
	}
	if cs, ok := c.vec16(); !ok || len(cs) < 2 || len(cs)%2 != 0 {
		return bad("cipher suites")
	}
	if cm, ok := c.vec8(); !ok || len(cm) < 1 {
		return bad("compression methods")
	}
	if len(c) == 0 {
		return nil // no extensions (TLS 1.2 and older may omit them)
	}
	exts, ok := c.vec16()
	if !ok || len(c) != 0 {
		return bad("extensions length")
	}
	seen := false
	for len(exts) > 0 {
		var typ uint16
		var data cursor
		if typ, ok = exts.u16(); ok {
			data, ok = exts.vec16()
		}
		if !ok {
			return bad("an extension")
		}
		if typ != extServerName {
			continue
		}
		if seen {
			return bad("two server_name extensions")
		}
		seen = true
		if err := h.serverName(data); err != nil {
			return err
		}
	}
	return nil
}

// serverName reads the server_name extension's data.
func (h *HelloReader) serverName(data cursor) error {
	bad := func(what string) error { return fmt.Errorf("%w: server_name: %s", ErrMalformed, what) }
	list, ok := data.vec16()
	if !ok || len(data) != 0 || len(list) == 0 {
		return bad("its list")
	}
	for len(list) > 0 {
		var typ uint8
		var name cursor
		if typ, ok = list.u8(); ok {
			name, ok = list.vec16()
		}
		if !ok || len(name) == 0 {
			return bad("an entry")
		}
		if typ != nameTypeHost {
			continue
		}
		if len(h.name) > 0 {
			return bad("two host names")
		}
		if len(name) > 255 || name[len(name)-1] == '.' {
			return bad("a host name too long or with a trailing dot")
		}
		for _, ch := range name {
			if ch <= ' ' || ch >= 0x7f {
				return bad("a host name with a byte that is not printable ASCII")
			}
			if 'A' <= ch && ch <= 'Z' {
				ch += 'a' - 'A'
			}
			h.name = append(h.name, ch)
		}
	}
	return nil
}

// cursor reads big-endian integers and length-prefixed vectors.
type cursor []byte

func (c *cursor) skip(n int) bool {
	if len(*c) < n {
		return false
	}
	*c = (*c)[n:]
	return true
}

func (c *cursor) u8() (uint8, bool) {
	if len(*c) < 1 {
		return 0, false
	}
	v := (*c)[0]
	*c = (*c)[1:]
	return v, true
}

func (c *cursor) u16() (uint16, bool) {
	if len(*c) < 2 {
		return 0, false
	}
	v := uint16((*c)[0])<<8 | uint16((*c)[1])
	*c = (*c)[2:]
	return v, true
}

func (c *cursor) take(n int) (cursor, bool) {
	if len(*c) < n {
		return nil, false
	}
	v := (*c)[:n:n]
	*c = (*c)[n:]
	return v, true
}

func (c *cursor) vec8() (cursor, bool) {
	n, ok := c.u8()
	if !ok {
		return nil, false
	}
	return c.take(int(n))
}

func (c *cursor) vec16() (cursor, bool) {
	n, ok := c.u16()
	if !ok {
		return nil, false
	}
	return c.take(int(n))
}
