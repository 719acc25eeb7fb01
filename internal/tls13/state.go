package tls13

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
)

// State is what a server's TLS 1.3 connection needs to go on after its
// handshake: the cipher suite, each direction's current traffic secret
// and the sequence number of its next record.
type State struct {
	Suite        uint16
	ClientSecret []byte // the client's application traffic secret (what the server reads)
	ServerSecret []byte // the server's (what it writes)
	ClientSeq    uint64
	ServerSeq    uint64
}

// ErrNotExportable is wrapped by Export's errors: the connection cannot go
// on elsewhere (not TLS 1.3, a handshake or a write half done, or a
// crypto/tls whose fields are not the ones Export reads).
var ErrNotExportable = errors.New("tls13: connection state cannot be exported")

// Export returns the state of tc, a server connection whose handshake is
// complete and which nobody reads or writes any more, with the bytes it
// holds: raw, the client's records read from the transport and not
// decrypted yet, which come before what the transport still holds, and
// plain, decrypted application data not returned by Read. tc must not be
// used afterwards, except to be dropped: its records go on elsewhere.
//
// crypto/tls keeps all of it in unexported fields; Export reads them by
// reflection, checking every field's type as it goes, and returns an
// error wrapping ErrNotExportable rather than guess.
func Export(tc *tls.Conn) (st *State, raw, plain []byte, err error) {
	defer func() {
		// A crypto/tls whose fields moved: the reflection below panics
		// rather than mislead.
		if p := recover(); p != nil {
			st, raw, plain, err = nil, nil, nil, fmt.Errorf("%w: %v", ErrNotExportable, p)
		}
	}()
	cs := tc.ConnectionState()
	switch {
	case !cs.HandshakeComplete:
		return nil, nil, nil, fmt.Errorf("%w: handshake not complete", ErrNotExportable)
	case cs.Version != tls.VersionTLS13:
		return nil, nil, nil, fmt.Errorf("%w: %s", ErrNotExportable, tls.VersionName(cs.Version))
	case !Supported(cs.CipherSuite):
		return nil, nil, nil, fmt.Errorf("%w: cipher suite %#04x", ErrNotExportable, cs.CipherSuite)
	}
	c := reflect.ValueOf(tc).Elem()
	in, out := field(c, "in", reflect.Struct), field(c, "out", reflect.Struct)
	for _, hc := range []reflect.Value{in, out} {
		if !field(hc, "err", reflect.Interface).IsNil() {
			return nil, nil, nil, fmt.Errorf("%w: the connection failed", ErrNotExportable)
		}
	}
	if field(c, "buffering", reflect.Bool).Bool() || field(c, "sendBuf", reflect.Slice).Len() > 0 {
		return nil, nil, nil, fmt.Errorf("%w: unsent records", ErrNotExportable)
	}
	if field(c, "closeNotifySent", reflect.Bool).Bool() {
		return nil, nil, nil, fmt.Errorf("%w: closed for writing", ErrNotExportable)
	}
	if unread(field(c, "hand", reflect.Struct)) > 0 {
		return nil, nil, nil, fmt.Errorf("%w: a post-handshake message half read", ErrNotExportable)
	}
	st = &State{
		Suite:        cs.CipherSuite,
		ClientSecret: byteSlice(field(in, "trafficSecret", reflect.Slice)),
		ServerSecret: byteSlice(field(out, "trafficSecret", reflect.Slice)),
		ClientSeq:    seq(field(in, "seq", reflect.Array)),
		ServerSeq:    seq(field(out, "seq", reflect.Array)),
	}
	s, _ := suiteOf(st.Suite)
	if h := s.hash().Size(); len(st.ClientSecret) != h || len(st.ServerSecret) != h {
		return nil, nil, nil, fmt.Errorf("%w: traffic secrets of %d and %d bytes, want %d", ErrNotExportable, len(st.ClientSecret), len(st.ServerSecret), h)
	}
	raw = bufferRest(field(c, "rawInput", reflect.Struct))
	plain = readerRest(field(c, "input", reflect.Struct))
	return st, raw, plain, nil
}

// field returns v's field name, which must be of kind k.
func field(v reflect.Value, name string, k reflect.Kind) reflect.Value {
	f := v.FieldByName(name)
	if !f.IsValid() {
		panic(fmt.Sprintf("no field %s in %s", name, v.Type()))
	}
	if f.Kind() != k {
		panic(fmt.Sprintf("field %s of %s is a %s, not a %s", name, v.Type(), f.Kind(), k))
	}
	return f
}

// byteSlice copies a []byte field.
func byteSlice(v reflect.Value) []byte {
	if v.Type().Elem().Kind() != reflect.Uint8 {
		panic(fmt.Sprintf("%s is not a byte slice", v.Type()))
	}
	return append([]byte(nil), v.Bytes()...)
}

// seq reads a [8]byte big-endian sequence number.
func seq(v reflect.Value) uint64 {
	if v.Len() != 8 || v.Type().Elem().Kind() != reflect.Uint8 {
		panic(fmt.Sprintf("%s is not a sequence number", v.Type()))
	}
	var n uint64
	for i := 0; i < 8; i++ {
		n = n<<8 | v.Index(i).Uint()
	}
	return n
}

var (
	bufferType = reflect.TypeFor[bytes.Buffer]()
	readerType = reflect.TypeFor[bytes.Reader]()
)

// bufferRest copies the unread bytes of a bytes.Buffer field.
func bufferRest(v reflect.Value) []byte {
	if v.Type() != bufferType {
		panic(fmt.Sprintf("%s is not a bytes.Buffer", v.Type()))
	}
	b := byteSlice(field(v, "buf", reflect.Slice))
	return b[field(v, "off", reflect.Int).Int():]
}

// unread is the number of unread bytes of a bytes.Buffer field.
func unread(v reflect.Value) int { return len(bufferRest(v)) }

// readerRest copies the unread bytes of a bytes.Reader field.
func readerRest(v reflect.Value) []byte {
	if v.Type() != readerType {
		panic(fmt.Sprintf("%s is not a bytes.Reader", v.Type()))
	}
	b := byteSlice(field(v, "s", reflect.Slice))
	i := field(v, "i", reflect.Int64).Int()
	if i >= int64(len(b)) {
		return nil
	}
	return b[i:]
}
