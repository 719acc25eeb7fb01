package frame

import "fmt"

// Encoding is the client preamble encoding of a listener.
type Encoding uint8

const (
	// Line is the text encoding: the key's bytes, then "\n" (a "\r" just
	// before the "\n" is dropped). nc is a usable client.
	Line Encoding = 1
	// Binary is the length-prefixed encoding: a kind byte, a 16-bit
	// big-endian length and the key's bytes.
	Binary Encoding = 2
)

// DefaultMaxKey is the default limit on a key's length in bytes.
const DefaultMaxKey = 1024

// MaxKeyLimit is the largest max-key a listener can have: the binary
// encoding carries the key's length in 16 bits.
const MaxKeyLimit = 1<<16 - 1

// ParseEncoding returns the Encoding named "line" or "binary".
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case "line":
		return Line, nil
	case "binary":
		return Binary, nil
	}
	return 0, fmt.Errorf("%w: %q (want line or binary)", ErrBadEncoding, s)
}

// String returns "line" or "binary", or "Encoding(n)" for an invalid value.
func (e Encoding) String() string {
	switch e {
	case Line:
		return "line"
	case Binary:
		return "binary"
	}
	return fmt.Sprintf("Encoding(%d)", uint8(e))
}

// Valid reports whether e is Line or Binary.
func (e Encoding) Valid() bool { return e == Line || e == Binary }

// MarshalText implements encoding.TextMarshaler.
func (e Encoding) MarshalText() ([]byte, error) {
	if !e.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrBadEncoding, uint8(e))
	}
	return []byte(e.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler, so an Encoding can be
// a flag (flag.TextVar) or a field of a JSON config.
func (e *Encoding) UnmarshalText(b []byte) error {
	v, err := ParseEncoding(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}
