package bench

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// reasons keeps, for each error kind, the first error of that kind a run
// met, as text (Result.Reasons): the -ERR line the server sent, what came
// back instead of an echo, why a TLS handshake failed. It is written only
// on failures, once per kind.
type reasons [numKinds]atomic.Pointer[string]

// note records detail as the reason of kind k unless one is recorded, or
// the run is stopping (then the error is the stop's doing, but for a
// mismatch).
func (w *worker) note(k int, detail string) {
	if (w.r.ctx.Err() != nil && k != kMismatch) || detail == "" {
		return
	}
	w.r.reasons[k].CompareAndSwap(nil, &detail)
}

// failErr counts an error of kind k caused by err and records its reason.
func (w *worker) failErr(k int, err error) {
	w.note(k, errReason(k, err))
	w.fail(k)
}

// errReason describes err, an error of kind k.
func errReason(k int, err error) string {
	if k == kTLS {
		return TLSReason(err)
	}
	return err.Error()
}

// TLSReason names why a TLS handshake failed, first in words an operator
// acts on ("untrusted certificate", "wrong name", "expired certificate",
// "not a TLS server"), then Go's error.
func TLSReason(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		header   tls.RecordHeaderError
	)
	why := ""
	switch {
	case errors.As(err, &unknown):
		why = "untrusted certificate (signed by an authority not trusted here)"
	case errors.As(err, &hostname):
		why = "wrong name (the certificate is not for the name dialled)"
	case errors.As(err, &invalid):
		switch invalid.Reason {
		case x509.Expired:
			why = "expired or not yet valid certificate"
		default:
			why = "invalid certificate"
		}
	case errors.As(err, &header):
		why = "not a TLS server (it answered in plaintext)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		why = "the server closed the connection during the handshake"
	}
	if why == "" {
		return err.Error()
	}
	return why + ": " + err.Error()
}

// errLine reads the rest of the "-ERR ..." line whose start is in got
// (bounded, within the connection's deadline) and returns it.
func errLine(c net.Conn, got []byte) string {
	line := append([]byte(nil), got...)
	if i := strings.IndexByte(string(line), '\n'); i >= 0 {
		return strings.TrimRight(string(line[:i]), "\r")
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	for len(line) < 512 {
		if n, err := c.Read(b[:]); n == 0 || err != nil || b[0] == '\n' {
			break
		}
		line = append(line, b[0])
	}
	return strings.TrimRight(string(line), "\r")
}

// mismatchReason describes a reply that is not the echo of a request of
// size bytes.
func mismatchReason(got []byte, size int) string {
	const show = 60
	if len(got) > show {
		got = got[:show]
	}
	return fmt.Sprintf("sent %d bytes, got back %s instead of their echo", size, strconv.Quote(string(got)))
}
