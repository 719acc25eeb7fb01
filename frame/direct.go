package frame

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
)

// TokenSize is the length of a direct preamble's token in bytes.
const TokenSize = sha256.Size

// DirectLabel is the fixed prefix of the message a direct token
// authenticates: the token for shard i is
// HMAC-SHA256(secret, DirectLabel || uint32 big-endian i).
const DirectLabel = "subordinate direct v1\x00"

// Token proves knowledge of the shared secret for one shard index. It is
// the same for every connection to that shard (see docs/PROTOCOL.md: it can
// be replayed by whoever sees it, so it needs TLS on untrusted networks).
type Token [TokenSize]byte

// DirectToken returns the token for shard under secret.
func DirectToken(secret []byte, shard uint32) Token {
	m := hmac.New(sha256.New, secret)
	var msg [len(DirectLabel) + 4]byte
	copy(msg[:], DirectLabel)
	binary.BigEndian.PutUint32(msg[len(DirectLabel):], shard)
	m.Write(msg[:])
	var t Token
	m.Sum(t[:0])
	return t
}

// VerifyDirect checks a direct preamble against the server's secret and
// its shard count n. It returns ErrDirectDisabled if secret is empty,
// ErrBadSecret if tok is not DirectToken(secret, shard) (compared in
// constant time), and ErrShardRange if shard >= n. The token is checked
// before the range, so a client without the secret learns nothing about n.
func VerifyDirect(secret []byte, n int, shard uint32, tok Token) error {
	if len(secret) == 0 {
		return ErrDirectDisabled
	}
	want := DirectToken(secret, shard)
	if subtle.ConstantTimeCompare(want[:], tok[:]) != 1 {
		return ErrBadSecret
	}
	if int64(shard) >= int64(n) {
		return fmt.Errorf("%w: %d, the server has %d shards", ErrShardRange, shard, n)
	}
	return nil
}

// AppendDirect appends the direct preamble for shard under secret in enc
// to dst. secret must not be empty (ErrDirectDisabled).
func AppendDirect(dst []byte, enc Encoding, shard uint32, secret []byte) ([]byte, error) {
	if len(secret) == 0 {
		return dst, fmt.Errorf("%w: no secret to sign with", ErrDirectDisabled)
	}
	return AppendDirectToken(dst, enc, shard, DirectToken(secret, shard))
}

// AppendDirectToken appends a direct preamble with a token already made
// (by DirectToken) to dst.
func AppendDirectToken(dst []byte, enc Encoding, shard uint32, tok Token) ([]byte, error) {
	switch enc {
	case Binary:
		dst = append(dst, MagicDirect)
		dst = binary.BigEndian.AppendUint32(dst, shard)
		return append(dst, tok[:]...), nil
	case Line:
		dst = append(dst, DirectPrefix)
		dst = strconv.AppendUint(dst, uint64(shard), 10)
		dst = append(dst, ' ')
		dst = hex.AppendEncode(dst, tok[:])
		return append(dst, '\n'), nil
	}
	return dst, fmt.Errorf("%w: %d", ErrBadEncoding, uint8(enc))
}
