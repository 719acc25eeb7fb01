package bench

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// Error kinds, the keys of Result.Errors.
const (
	// KindConnect: the dial failed.
	KindConnect = "connect"
	// KindTLS: the TLS handshake failed.
	KindTLS = "tls"
	// KindPreamble: the server answered the preamble with "-ERR ...", or
	// (Config.KeyFrom http-*) the request head with an HTTP response.
	KindPreamble = "preamble"
	// KindWrite: writing a request failed (other than a reset or timeout).
	KindWrite = "write"
	// KindShortRead: the server closed before echoing a whole request.
	KindShortRead = "short_read"
	// KindMismatch: an echoed byte differed from the byte sent.
	KindMismatch = "mismatch"
	// KindTimeout: a dial, handshake or request took longer than
	// Config.Timeout.
	KindTimeout = "timeout"
	// KindReset: the connection was reset by the server (or the pipe broke).
	KindReset = "reset"
	// KindRead: reading a reply failed otherwise.
	KindRead = "read"
)

// kinds lists every kind; a worker counts errors in an array indexed like it.
var kinds = []string{KindConnect, KindTLS, KindPreamble, KindWrite, KindShortRead,
	KindMismatch, KindTimeout, KindReset, KindRead}

const (
	kConnect = iota
	kTLS
	kPreamble
	kWrite
	kShortRead
	kMismatch
	kTimeout
	kReset
	kRead
	numKinds
)

// classify maps an I/O error to a kind; fallback is the kind of the
// operation that failed (kRead, kWrite, kConnect, kTLS).
func classify(err error, fallback int) int {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return kTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		if fallback == kConnect {
			return kConnect
		}
		return kReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		if fallback == kRead {
			return kShortRead
		}
	}
	return fallback
}
