package frame

import (
	"bytes"
	"fmt"
)

// AppendKey appends the preamble for key in enc to dst.
//
// The key must be 1 to MaxKeyLimit bytes (ErrEmptyKey, ErrKeyTooLong); the
// server's own max-key may be lower. In the Line encoding it must also
// not start with '!' (ErrReservedKey) or contain '\n' (ErrLineKey): such
// keys can be sent in the Binary encoding. A key that ends with '\r' is
// line-encoded as key "\r\n", since the decoder drops one '\r' before the
// '\n'. On error dst is returned unchanged.
func AppendKey(dst []byte, enc Encoding, key []byte) ([]byte, error) {
	if len(key) == 0 {
		return dst, ErrEmptyKey
	}
	if len(key) > MaxKeyLimit {
		return dst, fmt.Errorf("%w: %d bytes, at most %d can be encoded", ErrKeyTooLong, len(key), MaxKeyLimit)
	}
	switch enc {
	case Binary:
		dst = append(dst, MagicKey, byte(len(key)>>8), byte(len(key)))
		return append(dst, key...), nil
	case Line:
		if key[0] == DirectPrefix {
			return dst, ErrReservedKey
		}
		if bytes.IndexByte(key, '\n') >= 0 {
			return dst, ErrLineKey
		}
		dst = append(dst, key...)
		if key[len(key)-1] == '\r' {
			dst = append(dst, '\r')
		}
		return append(dst, '\n'), nil
	}
	return dst, fmt.Errorf("%w: %d", ErrBadEncoding, uint8(enc))
}

// LineKeyOK reports whether key can be sent in the Line encoding: it is
// not empty, does not start with '!' and contains no '\n'. (The listener's
// max-key is a separate limit.)
func LineKeyOK(key []byte) bool {
	return len(key) > 0 && key[0] != DirectPrefix && bytes.IndexByte(key, '\n') < 0
}
