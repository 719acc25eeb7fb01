package tls13

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// suite is a TLS 1.3 cipher suite: its AEAD and its hash.
type suite struct {
	id     uint16
	keyLen int
	hash   func() hash.Hash
	aead   func(key []byte) (cipher.AEAD, error)
}

var suites = []suite{
	{tls.TLS_AES_128_GCM_SHA256, 16, sha256.New, newGCM},
	{tls.TLS_AES_256_GCM_SHA384, 32, sha512.New384, newGCM},
	{tls.TLS_CHACHA20_POLY1305_SHA256, chacha20poly1305.KeySize, sha256.New, chacha20poly1305.New},
}

// suiteOf returns the suite id names.
func suiteOf(id uint16) (*suite, error) {
	for i := range suites {
		if suites[i].id == id {
			return &suites[i], nil
		}
	}
	return nil, fmt.Errorf("tls13: cipher suite %#04x is not a TLS 1.3 suite", id)
}

// Supported reports whether id is a TLS 1.3 cipher suite this package
// carries on.
func Supported(id uint16) bool {
	_, err := suiteOf(id)
	return err == nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// expandLabel is HKDF-Expand-Label with an empty context (RFC 8446,
// section 7.1).
func (s *suite) expandLabel(secret []byte, label string, n int) ([]byte, error) {
	full := "tls13 " + label
	info := binary.BigEndian.AppendUint16(make([]byte, 0, 4+len(full)), uint16(n))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0) // empty context
	return hkdf.Expand(s.hash, secret, string(info), n)
}

// keys is one direction's traffic keys (RFC 8446, section 7.3).
type keys struct {
	secret []byte
	aead   cipher.AEAD
	iv     [12]byte
	seq    uint64
}

// set derives the key and IV of secret, for records from seq on.
func (k *keys) set(s *suite, secret []byte, seq uint64) error {
	if len(secret) != s.hash().Size() {
		return fmt.Errorf("tls13: traffic secret of %d bytes, want %d", len(secret), s.hash().Size())
	}
	key, err := s.expandLabel(secret, "key", s.keyLen)
	if err != nil {
		return err
	}
	iv, err := s.expandLabel(secret, "iv", len(k.iv))
	if err != nil {
		return err
	}
	aead, err := s.aead(key)
	if err != nil {
		return err
	}
	k.secret, k.aead, k.seq = secret, aead, seq
	copy(k.iv[:], iv)
	return nil
}

// update moves to the next generation of traffic secret (a KeyUpdate).
func (k *keys) update(s *suite) error {
	next, err := s.expandLabel(k.secret, "traffic upd", s.hash().Size())
	if err != nil {
		return err
	}
	return k.set(s, next, 0)
}

// nonce is the per-record nonce: the IV XOR the sequence number (RFC
// 8446, section 5.3). It fails once the sequence number would wrap.
func (k *keys) nonce(dst *[12]byte) error {
	if k.seq == ^uint64(0) {
		return errSeqWrap
	}
	*dst = k.iv
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], k.seq)
	for i := range s {
		dst[4+i] ^= s[i]
	}
	return nil
}
