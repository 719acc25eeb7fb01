package frame

import (
	"encoding/binary"
	"fmt"
)

// MaxSessionSecret bounds a TLSSession traffic secret: the output of the
// suite's hash (48 bytes for SHA-384).
const MaxSessionSecret = 64

// maxSession bounds the encoded TLSSession of a hand-off message, its
// plaintext aside: the suite, the two secrets, the two sequence numbers
// and the TLS summary.
const maxSession = 2 + 2*(1+MaxSessionSecret) + 2*8 + maxTLSInfo + 4

// maxTLSInfo bounds an encoded TLSInfo.
const maxTLSInfo = 2 + 1 + MaxServerName + 1 + MaxALPN + 2 + MaxPeerSubject

// TLSSession is a client's TLS 1.3 session that the worker which
// accepted the connection established, carried to the owner with the
// client's socket (Handoff.Session): the owner goes on with the
// connection's records where the sender stopped (internal/tls13), with
// no handshake.
type TLSSession struct {
	// Suite is the negotiated TLS 1.3 cipher suite.
	Suite uint16
	// ClientSecret and ServerSecret are the current application traffic
	// secrets, of the suite's hash size.
	ClientSecret, ServerSecret []byte
	// ClientSeq and ServerSeq are the sequence numbers of each side's
	// next record.
	ClientSeq, ServerSeq uint64
	// Info summarises the session for the owner's handler.
	Info TLSInfo
	// Plain holds the application data the sender decrypted past the
	// preamble: the owner's handler reads it first. The client's records
	// the sender read and did not decrypt travel in Handoff.Early.
	Plain []byte
}

// check bounds s's fields.
func (s *TLSSession) check() error {
	switch {
	case len(s.ClientSecret) == 0 || len(s.ClientSecret) > MaxSessionSecret,
		len(s.ServerSecret) == 0 || len(s.ServerSecret) > MaxSessionSecret:
		return fmt.Errorf("%w: TLS session secrets of %d and %d bytes, want 1 to %d", ErrBadHeader, len(s.ClientSecret), len(s.ServerSecret), MaxSessionSecret)
	case len(s.Info.ServerName) > MaxServerName || len(s.Info.ALPN) > MaxALPN || len(s.Info.PeerSubject) > MaxPeerSubject:
		return fmt.Errorf("%w: TLS field too long", ErrBadHeader)
	}
	return nil
}

// appendSession appends s, checked.
func appendSession(dst []byte, s *TLSSession) []byte {
	dst = binary.BigEndian.AppendUint16(dst, s.Suite)
	dst = append(append(dst, byte(len(s.ClientSecret))), s.ClientSecret...)
	dst = append(append(dst, byte(len(s.ServerSecret))), s.ServerSecret...)
	dst = binary.BigEndian.AppendUint64(dst, s.ClientSeq)
	dst = binary.BigEndian.AppendUint64(dst, s.ServerSeq)
	dst = appendTLSInfo(dst, &s.Info)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s.Plain)))
	return append(dst, s.Plain...)
}

// session reads what appendSession wrote; maxPlain bounds Plain.
func (c *cursor) session(maxPlain int) (*TLSSession, error) {
	s := &TLSSession{Suite: c.u16()}
	for _, p := range []*[]byte{&s.ClientSecret, &s.ServerSecret} {
		n := 0
		if v := c.bytes(1); v != nil {
			n = int(v[0])
		}
		if c.ok() && (n == 0 || n > MaxSessionSecret) {
			return nil, fmt.Errorf("%w: TLS session secret of %d bytes", ErrBadHeader, n)
		}
		*p = c.bytes(n)
	}
	s.ClientSeq, s.ServerSeq = c.u64(), c.u64()
	if err := c.tlsInfo(&s.Info); err != nil {
		return nil, err
	}
	n := c.u32()
	if c.ok() && int64(n) > int64(maxPlain) {
		return nil, fmt.Errorf("%w: %d bytes of TLS plaintext, at most %d", ErrHeaderTooLarge, n, maxPlain)
	}
	s.Plain = c.bytes(int(n))
	if len(s.Plain) == 0 {
		s.Plain = nil
	}
	if !c.ok() {
		return nil, fmt.Errorf("%w: TLS session ends inside a field", ErrBadHeader)
	}
	return s, nil
}

// appendTLSInfo appends t as a stream header carries it.
func appendTLSInfo(dst []byte, t *TLSInfo) []byte {
	dst = binary.BigEndian.AppendUint16(dst, t.Version)
	dst = appendStr8(dst, t.ServerName)
	dst = appendStr8(dst, t.ALPN)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(t.PeerSubject)))
	return append(dst, t.PeerSubject...)
}

// tlsInfo reads what appendTLSInfo wrote.
func (c *cursor) tlsInfo(t *TLSInfo) error {
	t.Version = c.u16()
	t.ServerName = c.str8()
	t.ALPN = c.str8()
	n := int(c.u16())
	if c.ok() && n > MaxPeerSubject {
		return fmt.Errorf("%w: peer subject of %d bytes, at most %d", ErrBadHeader, n, MaxPeerSubject)
	}
	t.PeerSubject = string(c.bytes(n))
	return nil
}

func (c *cursor) u64() uint64 {
	if v := c.bytes(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}
