package frame

import (
	"errors"
	"strings"
)

// protoError is a protocol error whose text, without the package prefix, is
// a reason fit to send to a client in an -ERR line.
type protoError string

func (e protoError) Error() string  { return "frame: " + string(e) }
func (e protoError) Reason() string { return string(e) }

// Errors of the client preamble. Each is a distinct value, and Reason gives
// its human-readable text for the -ERR reply.
var (
	// ErrEmptyKey: the preamble names an empty key.
	ErrEmptyKey error = protoError("empty key")
	// ErrKeyTooLong: the key is longer than the listener's max-key. The
	// decoder reports it as soon as the limit is passed.
	ErrKeyTooLong error = protoError("key too long")
	// ErrBadMagic: the first byte of a binary preamble is not a known
	// preamble kind (wrong encoding, or a newer client).
	ErrBadMagic error = protoError("unknown binary preamble kind (bad magic byte)")
	// ErrReservedKey: a line-encoded key starts with '!', which introduces a
	// direct preamble in the line encoding.
	ErrReservedKey error = protoError("keys may not start with '!' in the line encoding")
	// ErrLineKey: AppendKey was asked to line-encode a key that contains a
	// newline; send it in the binary encoding.
	ErrLineKey error = protoError("key cannot be sent in the line encoding (contains LF)")
	// ErrBadDirect: a direct preamble is malformed.
	ErrBadDirect error = protoError("malformed direct preamble")
)

// Errors of direct-preamble verification.
var (
	// ErrBadSecret: the direct preamble's token was not made with the
	// server's secret for that shard index.
	ErrBadSecret error = protoError("direct preamble refused: wrong secret")
	// ErrShardRange: the direct preamble names a shard index that does not
	// exist.
	ErrShardRange error = protoError("direct preamble refused: shard index out of range")
	// ErrDirectDisabled: the server has no secret, so it accepts no direct
	// preambles.
	ErrDirectDisabled error = protoError("direct preambles are disabled on this server")
)

// Errors of the stream header.
var (
	// ErrBadVersion: the stream header's version byte is not one this
	// package reads.
	ErrBadVersion error = protoError("unsupported stream header version")
	// ErrBadHeader: the stream header is malformed (unknown flags, bad
	// lengths, trailing bytes) or a field to encode is out of bounds.
	ErrBadHeader error = protoError("malformed stream header")
	// ErrHeaderTooLarge: the stream header announces more bytes than the
	// reader's limits allow.
	ErrHeaderTooLarge error = protoError("stream header too large")
)

// Other errors.
var (
	// ErrBadEncoding: an Encoding value or name is not line or binary.
	ErrBadEncoding error = protoError("unknown preamble encoding")
	// ErrBadMaxKey: a max-key limit is outside [1, MaxKeyLimit].
	ErrBadMaxKey error = protoError("max-key out of range")
)

// Reason returns the text to send a client in an -ERR line for err. For an
// error of this package, wrapped by it with detail or not, that is err's
// text without the "frame: " prefix ("malformed direct preamble: shard index
// has a leading zero"); for one wrapped by other code, the reason of the
// package error inside; for any other error "internal error", since its
// text may not be meant for clients.
func Reason(err error) string {
	var r interface{ Reason() string }
	if !errors.As(err, &r) {
		return "internal error"
	}
	if msg, ok := strings.CutPrefix(err.Error(), "frame: "); ok {
		return msg
	}
	return r.Reason()
}
