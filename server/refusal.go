package server

import (
	"net/http"
	"strings"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/keysrc"
)

// refusalForm is how a connection refused before its handler has it
// hears why, in the language its client speaks (--key-from): our -ERR
// line, an HTTP response, or a TLS alert for a client whose TLS this
// worker has not terminated.
type refusalForm uint8

const (
	formLine refusalForm = iota
	formHTTP
	formAlert
)

// form returns the refusal form of a connection: rawTLS when the client
// speaks TLS and no handshake has been made with it.
func (r *routed) form(rawTLS bool) refusalForm {
	switch {
	case rawTLS:
		return formAlert
	case r.src.HTTP():
		return formHTTP
	}
	return formLine
}

// appendRefusal appends the refusal of a connection for reason, in form
// f. status is the HTTP status an HTTP client gets (0: derived from the
// reason, as refusalKind classifies it).
func appendRefusal(dst []byte, f refusalForm, reason string, status int) []byte {
	switch f {
	case formHTTP:
		if status == 0 {
			status = refusalStatus(reason)
		}
		return keysrc.HTTPResponse(dst, status, reason)
	case formAlert:
		return append(dst, keysrc.Alert(refusalAlert(reason))...)
	}
	return frame.AppendError(dst, reason)
}

// refusalStatus is the HTTP status of a refusal reason.
func refusalStatus(reason string) int {
	switch refusalKind(reason) {
	case refBusy, refOwnerUnavailable, refDraining:
		return http.StatusServiceUnavailable
	case refPreambleTimeout:
		return http.StatusRequestTimeout
	case refInternal:
		return http.StatusInternalServerError
	case refUntrustedProxy:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// refusalAlert is the TLS alert of a refusal reason.
func refusalAlert(reason string) uint8 {
	switch refusalKind(reason) {
	case refBusy, refOwnerUnavailable, refDraining, refInternal:
		return keysrc.AlertInternalError
	case refNoKey:
		return keysrc.AlertUnrecognizedName
	case refBadPreamble, refKeyTooLong:
		return keysrc.AlertDecodeError
	}
	return keysrc.AlertHandshakeFailure
}

// noKeyReason is the refusal of a connection whose source has no key.
func noKeyReason(src keysrc.Source) string {
	return "no key: the connection has no " + strings.TrimSuffix(src.String(), ":") + " to route by"
}
