package keysrc

import (
	"errors"
	"fmt"
)

// Bounds of a ClientHello.
const (
	// MaxHelloMessage bounds the ClientHello handshake message: 16 KiB,
	// 8 times what a browser sends with a post-quantum key share.
	MaxHelloMessage = 16 << 10
	// DefaultMaxHello is HelloReader's default bound on the bytes the
	// ClientHello takes on the wire, record headers included: room for
	// the largest message cut into records of a few hundred bytes.
	DefaultMaxHello = 2 * MaxHelloMessage
)

// TLS record and handshake constants (RFC 8446, 5.1 and 4).
const (
	recordHandshake = 22
	recordAlert     = 21
	recordHeaderLen = 5
	maxRecordLen    = 1 << 14
	typeClientHello = 1
	extServerName   = 0
	nameTypeHost    = 0
)

// Errors of HelloReader.Feed.
var (
	// ErrNotTLS: the connection does not start with a TLS handshake
	// record (a plaintext client on a TLS port, say).
	ErrNotTLS = errors.New("the first bytes are not a TLS handshake record (plaintext on a TLS port?)")
	// ErrHelloTooLarge: the ClientHello is longer than the bound.
	ErrHelloTooLarge = errors.New("ClientHello too large")
	// ErrMalformed: the bytes break the TLS record or ClientHello
	// syntax.
	ErrMalformed = errors.New("malformed ClientHello")
)

// A HelloReader reads the ClientHello at the start of a TLS connection,
// incrementally and without consuming it, and finds its server name
// (SNI): so that a worker routes the connection by name before any
// handshake, and the owner's crypto/tls then reads the same bytes.
//
// The ClientHello may span several records, and the records any number
// of reads. Feed resumes where the last call stopped, so bytes arriving
// one at a time cost O(n) in all. A ClientHello that fits in its first
// record, as every real one does, is parsed in place; one cut into
// records is reassembled in a buffer kept across Reset. The zero
// HelloReader is ready, with DefaultMaxHello.
type HelloReader struct {
	max  int    // bound on the wire bytes (0: DefaultMaxHello)
	pos  int    // wire bytes consumed: where the next record starts
	need int    // the handshake message's length with its header; 0: not known yet
	msg  []byte // the message so far, when it spans records
	name []byte // the server name, lower case; nil: none
	done bool
	err  error
}

// Init readies h, bounding the bytes the ClientHello takes on the wire,
// record headers included, to max (0: DefaultMaxHello).
func (h *HelloReader) Init(max int) {
	h.Reset()
	h.max = max
}

// Reset readies h for another connection, keeping its buffers and bound.
func (h *HelloReader) Reset() {
	h.pos, h.need, h.done, h.err = 0, 0, false, nil
	h.msg, h.name = h.msg[:0], h.name[:0]
}

// Feed is given all the bytes received on the connection so far (each
// call a longer prefix of the same stream) and reports done once the
// whole ClientHello is read. An error is final: ErrNotTLS,
// ErrHelloTooLarge or ErrMalformed, wrapped with what was wrong.
func (h *HelloReader) Feed(buf []byte) (done bool, err error) {
	if h.done || h.err != nil {
		return h.done, h.err
	}
	max := h.max
	if max <= 0 {
		max = DefaultMaxHello
	}
	for {
		rest := buf[h.pos:]
		if len(rest) > 0 && rest[0] != recordHandshake {
			if h.pos == 0 {
				return h.fail(ErrNotTLS)
			}
			return h.fail(fmt.Errorf("%w: a record of type %d inside the ClientHello", ErrMalformed, rest[0]))
		}
		if len(rest) < recordHeaderLen {
			return false, nil
		}
		if rest[1] != 3 || rest[2] > 4 {
			return h.fail(fmt.Errorf("%w: record version %d.%d", ErrMalformed, rest[1], rest[2]))
		}
		n := int(rest[3])<<8 | int(rest[4])
		switch {
		case n == 0:
			return h.fail(fmt.Errorf("%w: an empty handshake record", ErrMalformed))
		case n > maxRecordLen:
			return h.fail(fmt.Errorf("%w: a record of %d bytes", ErrMalformed, n))
		case h.pos+recordHeaderLen+n > max:
			return h.fail(fmt.Errorf("%w: more than %d bytes", ErrHelloTooLarge, max))
		case len(rest) < recordHeaderLen+n:
			return false, nil
		}
		frag := rest[recordHeaderLen : recordHeaderLen+n]
		h.pos += recordHeaderLen + n
		if len(h.msg) == 0 && len(frag) >= 4 {
			if err := h.header(frag); err != nil {
				return h.fail(err)
			}
			if len(frag) >= h.need {
				return h.finish(frag[:h.need]) // in place: the usual case
			}
		}
		h.msg = append(h.msg, frag...)
		if h.need == 0 && len(h.msg) >= 4 {
			if err := h.header(h.msg); err != nil {
				return h.fail(err)
			}
		}
		if h.need > 0 && len(h.msg) >= h.need {
			return h.finish(h.msg[:h.need])
		}
	}
}

// header reads the handshake message header at the start of b.
func (h *HelloReader) header(b []byte) error {
	if b[0] != typeClientHello {
		return fmt.Errorf("%w: handshake message %d, not a ClientHello", ErrMalformed, b[0])
	}
	n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	if n > MaxHelloMessage {
		return fmt.Errorf("%w: a ClientHello of %d bytes", ErrHelloTooLarge, n)
	}
	h.need = 4 + n
	return nil
}

func (h *HelloReader) fail(err error) (bool, error) {
	h.err = err
	return false, err
}

func (h *HelloReader) finish(msg []byte) (bool, error) {
	if err := h.parse(msg[4:]); err != nil {
		return h.fail(err)
	}
	h.done = true
	return true, nil
}

// ServerName returns the ClientHello's server name once Feed is done, in
// lower case; nil when it has none. It is valid until the next Reset.
func (h *HelloReader) ServerName() []byte {
	if !h.done || len(h.name) == 0 {
		return nil
	}
	return h.name
}

// End returns how many bytes of the stream the ClientHello's records
// take, once Feed is done.
func (h *HelloReader) End() int { return h.pos }
