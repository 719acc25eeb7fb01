package frame

import (
	"encoding/binary"
	"fmt"
	"io"
)

// StreamHeaderVersion is the version of the stream header this package
// writes, and the only one it reads.
const StreamHeaderVersion = 1

// StreamAccepted is the first byte an owner writes on a relayed stream,
// once it has read the header and taken the connection, before anything
// of the handler's: the accepting worker waits for it before it relays
// the client's bytes, and until then may open the stream again to the
// owner's successor if the owner dies (docs/PROTOCOL.md, section 6).
const StreamAccepted byte = 0x06

// Stream header flags.
const (
	flagDirect = 1 << 0
	flagTLS    = 1 << 1
	flagsKnown = flagDirect | flagTLS
)

// Bounds of the stream header's fields, in bytes.
const (
	// MaxAddrLen bounds each network name and address string.
	MaxAddrLen = 255
	// MaxServerName bounds TLSInfo.ServerName (DNS names are at most 253).
	MaxServerName = 255
	// MaxALPN bounds TLSInfo.ALPN (RFC 7301 protocol names are 1 to 255).
	MaxALPN = 255
	// MaxPeerSubject bounds TLSInfo.PeerSubject.
	MaxPeerSubject = 4096
	// DefaultMaxEarly is the default bound on StreamHeader.Early.
	DefaultMaxEarly = 64 << 10
	// MaxEarlyLimit is the largest early-data bound a reader can set, and
	// the most AppendStreamHeader encodes.
	MaxEarlyLimit = 1 << 20
)

// headerPrefix is the fixed start of a stream header: version, flags and
// the 32-bit length of the body that follows.
const headerPrefix = 6

// Addr is a network address in a stream header. It implements net.Addr, so
// a forwarded connection can report the client's and the listener's
// addresses as the accepting worker saw them.
type Addr struct {
	// Net is the network name ("tcp", "tcp4", "tcp6", "unix"...).
	Net string
	// Addr is the address in the form its network's String gives
	// ("192.0.2.1:4000", "[2001:db8::1]:443", "/run/sub.sock").
	Addr string
}

// Network returns a.Net.
func (a Addr) Network() string { return a.Net }

// String returns a.Addr.
func (a Addr) String() string { return a.Addr }

// TLSInfo summarises a TLS session the accepting worker terminated.
type TLSInfo struct {
	// Version is the negotiated TLS version (tls.VersionTLS12, ...).
	Version uint16
	// ServerName is the SNI the client sent, or "".
	ServerName string
	// ALPN is the negotiated application protocol, or "".
	ALPN string
	// PeerSubject is the subject of the verified client certificate in
	// RFC 2253 form (pkix.Name.String), or "" when there was none.
	PeerSubject string
}

// StreamHeader is what a worker sends, once, at the start of each mesh
// stream that carries a forwarded connection.
type StreamHeader struct {
	// Direct is true when the client sent a direct preamble; Shard is
	// then the index it named (already verified by the sender), and Key is
	// empty. Shard is ignored, and not sent, when Direct is false.
	Direct bool
	Shard  uint32
	// Key is the connection's key, 1 to MaxKeyLimit bytes, when not
	// Direct.
	Key []byte
	// Client is the client's (remote) address, Local the address it
	// connected to.
	Client, Local Addr
	// TLS is the TLS summary, or nil when the connection is not TLS.
	TLS *TLSInfo
	// Early holds the bytes the worker read past the preamble before
	// forwarding. They come before anything else the stream carries; a
	// sender with more than the limit sends the rest as stream data.
	Early []byte
}

// HeaderLimits bounds what ReadStreamHeader accepts. A zero field means its
// default.
type HeaderLimits struct {
	// MaxKey bounds Key; default DefaultMaxKey, at most MaxKeyLimit.
	MaxKey int
	// MaxEarly bounds Early; default DefaultMaxEarly, at most
	// MaxEarlyLimit.
	MaxEarly int
}

func (l HeaderLimits) withDefaults() (HeaderLimits, error) {
	if l.MaxKey == 0 {
		l.MaxKey = DefaultMaxKey
	}
	if l.MaxEarly == 0 {
		l.MaxEarly = DefaultMaxEarly
	}
	if l.MaxKey < 1 || l.MaxKey > MaxKeyLimit {
		return l, fmt.Errorf("%w: %d not in [1, %d]", ErrBadMaxKey, l.MaxKey, MaxKeyLimit)
	}
	if l.MaxEarly < 0 || l.MaxEarly > MaxEarlyLimit {
		return l, fmt.Errorf("frame: max early data %d not in [0, %d]", l.MaxEarly, MaxEarlyLimit)
	}
	return l, nil
}

// MaxBody returns the largest body length (the header less its 6-byte
// prefix) a header within l can have.
func (l HeaderLimits) MaxBody() int {
	l, err := l.withDefaults()
	if err != nil {
		return 0
	}
	return 2 + l.MaxKey + 4*(1+MaxAddrLen) +
		2 + 1 + MaxServerName + 1 + MaxALPN + 2 + MaxPeerSubject +
		4 + l.MaxEarly
}

// AppendStreamHeader appends h, encoded, to dst. It returns an error
// wrapping ErrBadHeader, and dst unchanged, if a field is out of bounds.
func AppendStreamHeader(dst []byte, h *StreamHeader) ([]byte, error) {
	if err := h.check(); err != nil {
		return dst, err
	}
	var flags byte
	if h.Direct {
		flags |= flagDirect
	}
	if h.TLS != nil {
		flags |= flagTLS
	}
	start := len(dst)
	dst = append(dst, StreamHeaderVersion, flags, 0, 0, 0, 0)
	if h.Direct {
		dst = binary.BigEndian.AppendUint32(dst, h.Shard)
	} else {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(h.Key)))
		dst = append(dst, h.Key...)
	}
	dst = appendStr8(dst, h.Client.Net)
	dst = appendStr8(dst, h.Client.Addr)
	dst = appendStr8(dst, h.Local.Net)
	dst = appendStr8(dst, h.Local.Addr)
	if t := h.TLS; t != nil {
		dst = appendTLSInfo(dst, t)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(h.Early)))
	dst = append(dst, h.Early...)
	binary.BigEndian.PutUint32(dst[start+2:], uint32(len(dst)-start-headerPrefix))
	return dst, nil
}

func (h *StreamHeader) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadHeader}, args...)...)
	}
	if h.Direct {
		if len(h.Key) != 0 {
			return bad("a direct header has no key")
		}
	} else if len(h.Key) == 0 || len(h.Key) > MaxKeyLimit {
		return bad("key of %d bytes, want 1 to %d", len(h.Key), MaxKeyLimit)
	}
	for _, s := range []string{h.Client.Net, h.Client.Addr, h.Local.Net, h.Local.Addr} {
		if len(s) > MaxAddrLen {
			return bad("address field of %d bytes, at most %d", len(s), MaxAddrLen)
		}
	}
	if t := h.TLS; t != nil {
		if len(t.ServerName) > MaxServerName || len(t.ALPN) > MaxALPN || len(t.PeerSubject) > MaxPeerSubject {
			return bad("TLS field too long")
		}
	}
	if len(h.Early) > MaxEarlyLimit {
		return bad("%d bytes of early data, at most %d", len(h.Early), MaxEarlyLimit)
	}
	return nil
}

func appendStr8(dst []byte, s string) []byte {
	return append(append(dst, byte(len(s))), s...)
}

// ReadStreamHeader reads one stream header from r, and not a byte more. It
// reads the 6-byte prefix, checks the version (ErrBadVersion), the flags
// and the announced length against lim (ErrBadHeader, ErrHeaderTooLarge)
// before reading the body, and then reads exactly the body and parses it.
// Key and Early share one buffer, allocated for this header.
//
// An io.EOF before the first byte is returned as is; a header cut short
// gives an error wrapping io.ErrUnexpectedEOF.
func ReadStreamHeader(r io.Reader, lim HeaderLimits) (*StreamHeader, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return nil, err
	}
	var pre [headerPrefix]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		if err == io.EOF {
			return nil, err
		}
		return nil, fmt.Errorf("frame: reading stream header: %w", err)
	}
	if pre[0] != StreamHeaderVersion {
		return nil, fmt.Errorf("%w: %d", ErrBadVersion, pre[0])
	}
	flags := pre[1]
	if flags&^flagsKnown != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#02x", ErrBadHeader, flags)
	}
	size := binary.BigEndian.Uint32(pre[2:])
	if int64(size) > int64(lim.MaxBody()) {
		return nil, fmt.Errorf("%w: %d bytes announced, at most %d", ErrHeaderTooLarge, size, lim.MaxBody())
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("frame: reading stream header: %w", err)
	}
	return parseBody(flags, body, lim)
}

// StreamHeaderPrefix is the length of a stream header's fixed start
// (version, flags, body length): StreamHeaderLen needs that many bytes.
const StreamHeaderPrefix = headerPrefix

// StreamHeaderLen returns the whole length of the stream header that b
// starts with, from its first StreamHeaderPrefix bytes, checked as
// ReadStreamHeader checks them (version, flags, body size against lim).
func StreamHeaderLen(b []byte, lim HeaderLimits) (int, error) {
	lim, err := lim.withDefaults()
	if err != nil {
		return 0, err
	}
	if len(b) < headerPrefix {
		return 0, fmt.Errorf("frame: stream header prefix of %d bytes: %w", len(b), io.ErrUnexpectedEOF)
	}
	if b[0] != StreamHeaderVersion {
		return 0, fmt.Errorf("%w: %d", ErrBadVersion, b[0])
	}
	if b[1]&^flagsKnown != 0 {
		return 0, fmt.Errorf("%w: unknown flags %#02x", ErrBadHeader, b[1])
	}
	size := binary.BigEndian.Uint32(b[2:])
	if int64(size) > int64(lim.MaxBody()) {
		return 0, fmt.Errorf("%w: %d bytes announced, at most %d", ErrHeaderTooLarge, size, lim.MaxBody())
	}
	return headerPrefix + int(size), nil
}

// parseBody parses a stream header body; every length is checked against
// what is left of body and against lim.
func parseBody(flags byte, body []byte, lim HeaderLimits) (*StreamHeader, error) {
	c := cursor{b: body}
	h := new(StreamHeader)
	if flags&flagDirect != 0 {
		h.Direct = true
		h.Shard = c.u32()
	} else {
		n := int(c.u16())
		if c.ok() && (n == 0 || n > lim.MaxKey) {
			if n == 0 {
				return nil, fmt.Errorf("%w: empty key", ErrBadHeader)
			}
			return nil, fmt.Errorf("%w: key of %d bytes, at most %d", ErrHeaderTooLarge, n, lim.MaxKey)
		}
		h.Key = c.bytes(n)
	}
	h.Client.Net = c.str8()
	h.Client.Addr = c.str8()
	h.Local.Net = c.str8()
	h.Local.Addr = c.str8()
	if flags&flagTLS != 0 {
		h.TLS = new(TLSInfo)
		if err := c.tlsInfo(h.TLS); err != nil {
			return nil, err
		}
	}
	n := c.u32()
	if c.ok() && int64(n) > int64(lim.MaxEarly) {
		return nil, fmt.Errorf("%w: %d bytes of early data, at most %d", ErrHeaderTooLarge, n, lim.MaxEarly)
	}
	h.Early = c.bytes(int(n))
	if !c.ok() {
		return nil, fmt.Errorf("%w: body ends inside a field", ErrBadHeader)
	}
	if len(c.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadHeader, len(c.b))
	}
	if len(h.Early) == 0 {
		h.Early = nil
	}
	return h, nil
}

// cursor reads fields from a byte slice; reading past the end sets bad,
// and every later read returns zero values.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) ok() bool { return !c.bad }

func (c *cursor) bytes(n int) []byte {
	if c.bad || n > len(c.b) {
		c.bad = true
		return nil
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

func (c *cursor) u16() uint16 {
	if v := c.bytes(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (c *cursor) u32() uint32 {
	if v := c.bytes(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (c *cursor) str8() string {
	n := c.bytes(1)
	if n == nil {
		return ""
	}
	return string(c.bytes(int(n[0])))
}
