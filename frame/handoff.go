package frame

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// HandoffVersion is the version of the hand-off message this package
// writes, and the only one it reads.
const HandoffVersion = 1

// MaxHandoffEarly bounds Handoff.Early. A worker that read more than this
// past the preamble relays the connection instead of handing it off.
const MaxHandoffEarly = 64 << 10

// handoffPrefix is the fixed start of a hand-off message: version, flags
// and the listener index.
const handoffPrefix = 4

// MaxHandoffSize is the largest hand-off message: the prefix, the longest
// key or a direct shard index, and the most early data.
// A TLS session's plaintext shares the early data's bound.
const MaxHandoffSize = handoffPrefix + 2 + MaxKeyLimit + 2*(1+maxAddrPort) + 4 + MaxHandoffEarly + maxSession

// maxAddrPort bounds one address of a hand-off message: an IPv6 address
// with its zone and port (netip.AddrPort.MarshalBinary).
const maxAddrPort = 16 + 32 + 2

// Handoff is the message that travels with a client's socket when the
// worker that accepted it hands it to the worker that owns its key
// (docs/PROTOCOL.md, "The hand-off message"). The socket itself rides in
// the same datagram as an SCM_RIGHTS control message.
type Handoff struct {
	// Direct is true when the client sent a direct preamble; Shard is
	// then the index it named (already verified by the sender), and Key is
	// empty. Shard is ignored, and not sent, when Direct is false.
	Direct bool
	Shard  uint32
	// Key is the connection's key, 1 to MaxKeyLimit bytes, when not
	// Direct.
	Key []byte
	// Listener is the index, in the server's listen addresses, of the
	// listener that accepted the connection.
	Listener uint16
	// Early holds the bytes the sender read past the preamble, at most
	// MaxHandoffEarly. The owner gives them to the handler before anything
	// it reads from the socket.
	Early []byte
	// Stream is true when the socket is not the client's but one end of
	// a Unix socketpair whose other end the sender relays to the client
	// (a TLS connection it terminated): the socket starts with a stream
	// header (docs/PROTOCOL.md, section 6), which carries the client's
	// addresses, its TLS summary and the early data; Early is empty.
	Stream bool
	// TLS is true when the client speaks TLS and the sender did not
	// terminate it (it routed by the ClientHello's server name, or by the
	// client's address, before any handshake): the owner terminates it,
	// and Early starts with the bytes of the ClientHello.
	TLS bool
	// Session, when set, is the client's TLS 1.3 session, which the
	// sender established and the owner goes on with, with no handshake:
	// the socket is the client's, past its handshake and preamble, and
	// Early holds the client's records the sender read and did not
	// decrypt. Early and Session.Plain together are at most
	// MaxHandoffEarly bytes.
	Session *TLSSession
	// Client and Local, when valid, are the client's addresses as a PROXY
	// protocol header declared them (--accept-proxy-protocol): the owner
	// presents them instead of the socket's, which are the proxy's. Both
	// are valid or neither.
	Client, Local netip.AddrPort
}

// Hand-off flags.
const (
	// flagStream marks a hand-off of a relayed stream (Handoff.Stream).
	flagStream = 1 << 1
	// flagAddrs says the client's addresses follow the key
	// (Handoff.Client, Handoff.Local).
	flagAddrs = 1 << 2
	// flagHandoffTLS marks a client socket whose TLS the owner terminates
	// (Handoff.TLS).
	flagHandoffTLS = 1 << 3
	// flagSession says a TLS session follows the early data
	// (Handoff.Session).
	flagSession = 1 << 4
)

// AppendHandoff appends m, encoded, to dst. It returns an error wrapping
// ErrBadHeader, and dst unchanged, if a field is out of bounds.
func AppendHandoff(dst []byte, m *Handoff) ([]byte, error) {
	switch {
	case m.Direct && len(m.Key) != 0:
		return dst, fmt.Errorf("%w: a direct hand-off has no key", ErrBadHeader)
	case !m.Direct && (len(m.Key) == 0 || len(m.Key) > MaxKeyLimit):
		return dst, fmt.Errorf("%w: key of %d bytes, want 1 to %d", ErrBadHeader, len(m.Key), MaxKeyLimit)
	case len(m.Early) > MaxHandoffEarly:
		return dst, fmt.Errorf("%w: %d bytes of early data, at most %d", ErrBadHeader, len(m.Early), MaxHandoffEarly)
	}
	if m.Stream && len(m.Early) > 0 {
		return dst, fmt.Errorf("%w: a stream hand-off carries its early data in its stream header", ErrBadHeader)
	}
	if m.Stream && m.TLS {
		return dst, fmt.Errorf("%w: a stream hand-off's TLS is terminated already", ErrBadHeader)
	}
	if m.Client.IsValid() != m.Local.IsValid() {
		return dst, fmt.Errorf("%w: a hand-off with one address of two", ErrBadHeader)
	}
	if s := m.Session; s != nil {
		if m.Stream || m.TLS {
			return dst, fmt.Errorf("%w: a hand-off with a TLS session is neither a stream nor a TLS one", ErrBadHeader)
		}
		if len(m.Early)+len(s.Plain) > MaxHandoffEarly {
			return dst, fmt.Errorf("%w: %d bytes of early data and TLS plaintext, at most %d", ErrBadHeader, len(m.Early)+len(s.Plain), MaxHandoffEarly)
		}
		if err := s.check(); err != nil {
			return dst, err
		}
	}
	var flags byte
	if m.Direct {
		flags |= flagDirect
	}
	if m.Stream {
		flags |= flagStream
	}
	if m.TLS {
		flags |= flagHandoffTLS
	}
	if m.Client.IsValid() {
		flags |= flagAddrs
	}
	if m.Session != nil {
		flags |= flagSession
	}
	dst = append(dst, HandoffVersion, flags)
	dst = binary.BigEndian.AppendUint16(dst, m.Listener)
	if m.Direct {
		dst = binary.BigEndian.AppendUint32(dst, m.Shard)
	} else {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(m.Key)))
		dst = append(dst, m.Key...)
	}
	if m.Client.IsValid() {
		dst = appendAddrPort(dst, m.Client)
		dst = appendAddrPort(dst, m.Local)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Early)))
	dst = append(dst, m.Early...)
	if m.Session != nil {
		dst = appendSession(dst, m.Session)
	}
	return dst, nil
}

// ParseHandoff parses one whole hand-off message. Key and Early alias b.
// A key longer than maxKey (at most MaxKeyLimit) is refused with
// ErrHeaderTooLarge; anything malformed with ErrBadVersion or
// ErrBadHeader.
func ParseHandoff(b []byte, maxKey int) (*Handoff, error) {
	if len(b) < handoffPrefix {
		return nil, fmt.Errorf("%w: hand-off message of %d bytes", ErrBadHeader, len(b))
	}
	if b[0] != HandoffVersion {
		return nil, fmt.Errorf("%w: hand-off version %d", ErrBadVersion, b[0])
	}
	flags := b[1]
	if flags&^(flagDirect|flagStream|flagAddrs|flagHandoffTLS|flagSession) != 0 {
		return nil, fmt.Errorf("%w: unknown hand-off flags %#02x", ErrBadHeader, flags)
	}
	m := &Handoff{Listener: binary.BigEndian.Uint16(b[2:]), Stream: flags&flagStream != 0, TLS: flags&flagHandoffTLS != 0}
	if m.Stream && m.TLS {
		return nil, fmt.Errorf("%w: a stream hand-off marked TLS", ErrBadHeader)
	}
	c := cursor{b: b[handoffPrefix:]}
	if flags&flagDirect != 0 {
		m.Direct = true
		m.Shard = c.u32()
	} else {
		n := int(c.u16())
		if c.ok() && n == 0 {
			return nil, fmt.Errorf("%w: empty key", ErrBadHeader)
		}
		if c.ok() && n > maxKey {
			return nil, fmt.Errorf("%w: key of %d bytes, at most %d", ErrHeaderTooLarge, n, maxKey)
		}
		m.Key = c.bytes(n)
	}
	if flags&flagAddrs != 0 {
		var err error
		if m.Client, err = c.addrPort(); err == nil {
			m.Local, err = c.addrPort()
		}
		if err != nil {
			return nil, err
		}
	}
	n := c.u32()
	if c.ok() && n > MaxHandoffEarly {
		return nil, fmt.Errorf("%w: %d bytes of early data, at most %d", ErrHeaderTooLarge, n, MaxHandoffEarly)
	}
	m.Early = c.bytes(int(n))
	if flags&flagSession != 0 {
		if m.Stream || m.TLS {
			return nil, fmt.Errorf("%w: a stream or TLS hand-off with a TLS session", ErrBadHeader)
		}
		var err error
		if m.Session, err = c.session(MaxHandoffEarly - len(m.Early)); err != nil {
			return nil, err
		}
	}
	if !c.ok() {
		return nil, fmt.Errorf("%w: hand-off message ends inside a field", ErrBadHeader)
	}
	if len(c.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes in a hand-off message", ErrBadHeader, len(c.b))
	}
	if len(m.Early) == 0 {
		m.Early = nil
	}
	if m.Stream && m.Early != nil {
		return nil, fmt.Errorf("%w: a stream hand-off with early data", ErrBadHeader)
	}
	return m, nil
}

// appendAddrPort appends a, valid, as its length and its binary form.
func appendAddrPort(dst []byte, a netip.AddrPort) []byte {
	b, _ := a.MarshalBinary()
	return append(append(dst, byte(len(b))), b...)
}

// addrPort reads what appendAddrPort wrote: a valid IP address and port.
func (c *cursor) addrPort() (netip.AddrPort, error) {
	n := 0
	if v := c.bytes(1); v != nil {
		n = int(v[0])
	}
	b := c.bytes(n)
	if !c.ok() {
		return netip.AddrPort{}, fmt.Errorf("%w: hand-off message ends inside an address", ErrBadHeader)
	}
	var a netip.AddrPort
	if err := a.UnmarshalBinary(b); err != nil || !a.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("%w: hand-off address of %d bytes", ErrBadHeader, n)
	}
	return a, nil
}
