package frame

import (
	"bytes"
	"fmt"
	"math"
)

// Magic bytes: the first byte of a binary preamble says what follows.
const (
	// MagicKey starts a binary key preamble: MagicKey, the key's length
	// as a 16-bit big-endian integer, the key's bytes.
	MagicKey byte = 0xB1
	// MagicDirect starts a binary direct preamble: MagicDirect, the shard
	// index as a 32-bit big-endian integer, the 32-byte Token.
	MagicDirect byte = 0xB2
)

// DirectPrefix is the first byte of a line direct preamble:
// "!<shard> <64 hex digits of the token>\n". Line-encoded keys may not start
// with it.
const DirectPrefix = '!'

// Preamble is a decoded client preamble: a key, or a direct request for one
// shard.
type Preamble struct {
	// Direct is true for a direct preamble, which names Shard and proves
	// knowledge of the secret with Token. Check it with VerifyDirect
	// before trusting Shard.
	Direct bool
	// Key is the key of a key preamble (nil for a direct one). It is a
	// slice of the Decoder's buffer, valid until the Decoder's next Reset
	// or Init: copy it to keep it longer.
	Key []byte
	// Shard is the shard index a direct preamble names.
	Shard uint32
	// Token is a direct preamble's proof of the secret.
	Token Token
}

// Decoder states.
const (
	stStart uint8 = iota
	stDone
	stFailed
	// binary
	stBinLen    // after MagicKey: the 2 length bytes
	stBinKey    // the key's bytes
	stBinDirect // after MagicDirect: 4 index bytes and the token
	// line
	stLineKey  // a key, up to '\n'
	stBangHead // after '!': the first digit of the index
	stDigits   // the rest of the index, up to ' '
	stHex      // the token's 64 hex digits
	stEOL      // '\r' or '\n'
	stLF       // '\n' after '\r'
)

// A Decoder decodes the client preamble of one connection incrementally: feed
// it each read with Feed until it reports done or an error. It never consumes
// a byte past the preamble, so what follows in the last input, from the count
// Feed returned, belongs to the connection's payload.
//
// A Decoder is reusable: Reset readies it for another connection with the
// same settings, keeping its key buffer, so a pooled Decoder decodes without
// allocating. The zero Decoder is not ready: call Init (or use NewDecoder).
// A Decoder is not safe for concurrent use.
type Decoder struct {
	enc    Encoding
	maxKey int
	state  uint8
	err    error
	cnt    int    // bytes of the current field seen so far
	klen   int    // binary: the announced key length
	shard  uint64 // direct: the index, accumulated
	direct bool
	key    []byte
	token  Token
}

// NewDecoder returns a Decoder for enc that accepts keys of 1 to maxKey
// bytes. maxKey must be in [1, MaxKeyLimit].
func NewDecoder(enc Encoding, maxKey int) (*Decoder, error) {
	d := new(Decoder)
	if err := d.Init(enc, maxKey); err != nil {
		return nil, err
	}
	return d, nil
}

// Init sets d's encoding and key limit and resets it.
func (d *Decoder) Init(enc Encoding, maxKey int) error {
	if !enc.Valid() {
		return fmt.Errorf("%w: %d", ErrBadEncoding, uint8(enc))
	}
	if maxKey < 1 || maxKey > MaxKeyLimit {
		return fmt.Errorf("%w: %d not in [1, %d]", ErrBadMaxKey, maxKey, MaxKeyLimit)
	}
	d.enc, d.maxKey = enc, maxKey
	d.Reset()
	return nil
}

// Reset readies d for a new preamble with the same encoding and limit. It
// keeps the key buffer (at most maxKey+1 bytes), which invalidates the Key
// of the previous result.
func (d *Decoder) Reset() {
	*d = Decoder{enc: d.enc, maxKey: d.maxKey, key: d.key[:0]}
}

// Encoding returns the encoding d decodes.
func (d *Decoder) Encoding() Encoding { return d.enc }

// MaxKey returns the longest key d accepts.
func (d *Decoder) MaxKey() int { return d.maxKey }

// Done reports whether d has decoded a whole preamble.
func (d *Decoder) Done() bool { return d.state == stDone }

// Err returns the error that stopped d, or nil.
func (d *Decoder) Err() error { return d.err }

// Preamble returns the decoded preamble. It is the zero Preamble unless Feed
// has reported done.
func (d *Decoder) Preamble() Preamble {
	if d.state != stDone {
		return Preamble{}
	}
	if d.direct {
		return Preamble{Direct: true, Shard: uint32(d.shard), Token: d.token}
	}
	return Preamble{Key: d.key}
}

// Feed decodes the next bytes of the connection. It returns how many bytes
// of p belong to the preamble (n <= len(p); all of p while not done) and
// whether the preamble is complete; p[n:] then is the start of the payload.
//
// Once done, Feed returns (0, true, nil). On an error (one of ErrEmptyKey,
// ErrKeyTooLong, ErrBadMagic, ErrReservedKey, ErrBadDirect) the preamble is
// invalid, n is meaningless, and every later Feed returns the same error.
// Feed keeps no reference to p.
func (d *Decoder) Feed(p []byte) (n int, done bool, err error) {
	switch d.state {
	case stDone:
		return 0, true, nil
	case stFailed:
		return 0, false, d.err
	}
	if d.enc == Binary {
		return d.feedBinary(p)
	}
	if !d.enc.Valid() {
		return d.fail(0, fmt.Errorf("%w: decoder not initialised", ErrBadEncoding))
	}
	return d.feedLine(p)
}

func (d *Decoder) fail(n int, err error) (int, bool, error) {
	d.state, d.err = stFailed, err
	d.key = d.key[:0]
	return n, false, err
}

func (d *Decoder) tooLong() error {
	return fmt.Errorf("%w: longer than %d bytes", ErrKeyTooLong, d.maxKey)
}

func (d *Decoder) finish(n int) (int, bool, error) {
	d.state = stDone
	return n, true, nil
}

func (d *Decoder) feedBinary(p []byte) (int, bool, error) {
	i := 0
	for i < len(p) {
		switch d.state {
		case stStart:
			switch p[i] {
			case MagicKey:
				d.state = stBinLen
			case MagicDirect:
				d.state, d.direct = stBinDirect, true
			default:
				return d.fail(i+1, ErrBadMagic)
			}
			i++
		case stBinLen:
			d.klen = d.klen<<8 | int(p[i])
			d.cnt++
			i++
			if d.cnt < 2 {
				continue
			}
			if d.klen == 0 {
				return d.fail(i, ErrEmptyKey)
			}
			if d.klen > d.maxKey {
				return d.fail(i, d.tooLong())
			}
			d.state = stBinKey
		case stBinKey:
			m := min(d.klen-len(d.key), len(p)-i)
			d.key = grow(d.key, p[i:i+m], d.klen)
			i += m
			if len(d.key) == d.klen {
				return d.finish(i)
			}
		case stBinDirect:
			if d.cnt < 4 {
				d.shard = d.shard<<8 | uint64(p[i])
				d.cnt++
				i++
				continue
			}
			m := copy(d.token[d.cnt-4:], p[i:])
			d.cnt += m
			i += m
			if d.cnt == 4+TokenSize {
				return d.finish(i)
			}
		}
	}
	return i, false, nil
}

func (d *Decoder) feedLine(p []byte) (int, bool, error) {
	i := 0
	for i < len(p) {
		switch d.state {
		case stStart:
			if p[i] == DirectPrefix {
				d.state, d.direct = stBangHead, true
				i++
				continue
			}
			d.state = stLineKey
		case stLineKey:
			return d.feedLineKey(p, i)
		case stBangHead:
			c := p[i]
			if c < '0' || c > '9' {
				return d.fail(i+1, ErrReservedKey)
			}
			d.shard = uint64(c - '0')
			d.state = stDigits
			i++
		case stDigits:
			c := p[i]
			i++
			switch {
			case c == ' ':
				d.state = stHex
			case c < '0' || c > '9':
				return d.fail(i, fmt.Errorf("%w: shard index is not a decimal number", ErrBadDirect))
			case d.shard == 0:
				return d.fail(i, fmt.Errorf("%w: shard index has a leading zero", ErrBadDirect))
			default:
				d.shard = d.shard*10 + uint64(c-'0')
				if d.shard > math.MaxUint32 {
					return d.fail(i, fmt.Errorf("%w: shard index exceeds 32 bits", ErrBadDirect))
				}
			}
		case stHex:
			v := unhex(p[i])
			i++
			if v > 0xf {
				return d.fail(i, fmt.Errorf("%w: token is not 64 hex digits", ErrBadDirect))
			}
			if d.cnt%2 == 0 {
				d.token[d.cnt/2] = v << 4
			} else {
				d.token[d.cnt/2] |= v
			}
			d.cnt++
			if d.cnt == 2*TokenSize {
				d.state = stEOL
			}
		case stEOL, stLF:
			c := p[i]
			i++
			switch {
			case c == '\n':
				return d.finish(i)
			case c == '\r' && d.state == stEOL:
				d.state = stLF
			default:
				return d.fail(i, fmt.Errorf("%w: no newline after the token", ErrBadDirect))
			}
		}
	}
	return i, false, nil
}

// feedLineKey takes the key's bytes from p[i:] up to the newline. A key of
// maxKey bytes may be followed by "\r\n", so maxKey+1 bytes are buffered
// only when the last of them is '\r'; past that the key is too long.
func (d *Decoder) feedLineKey(p []byte, i int) (int, bool, error) {
	rest := p[i:]
	j := bytes.IndexByte(rest, '\n')
	chunk := rest
	if j >= 0 {
		chunk = rest[:j]
	}
	if total := len(d.key) + len(chunk); total > d.maxKey {
		last := byte(0)
		if len(chunk) > 0 {
			last = chunk[len(chunk)-1]
		} else {
			last = d.key[len(d.key)-1]
		}
		if total > d.maxKey+1 || last != '\r' {
			return d.fail(i+len(chunk), d.tooLong())
		}
	}
	d.key = grow(d.key, chunk, d.maxKey+1)
	if j < 0 {
		return len(p), false, nil
	}
	if n := len(d.key); n > 0 && d.key[n-1] == '\r' {
		d.key = d.key[:n-1]
	}
	if len(d.key) == 0 {
		return d.fail(i+j+1, ErrEmptyKey)
	}
	return d.finish(i + j + 1)
}

// grow appends chunk to key, growing the buffer in proportion to the bytes
// received but never to a capacity above limit (len(key)+len(chunk) must
// not exceed it): a client that announces a long key and sends nothing
// costs no memory.
func grow(key, chunk []byte, limit int) []byte {
	if need := len(key) + len(chunk); need > cap(key) {
		c := min(limit, max(need, 2*cap(key), 64))
		key = append(make([]byte, 0, c), key...)
	}
	return append(key, chunk...)
}

// unhex returns the value of hex digit c, or 0xff if c is not one.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}
