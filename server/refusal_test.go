package server

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"

	"github.com/subordinate/subordinate/internal/keysrc"
)

// TestAppendRefusal: each form says each reason in its own language, with
// the status or alert that fits it.
func TestAppendRefusal(t *testing.T) {
	for _, c := range []struct {
		reason string
		status int // HTTP
		alert  uint8
	}{
		{"server busy", 503, keysrc.AlertInternalError},
		{"shard 3 unavailable", 503, keysrc.AlertInternalError},
		{"server is draining", 503, keysrc.AlertInternalError},
		{"preamble timeout", 408, keysrc.AlertHandshakeFailure},
		{"internal error", 500, keysrc.AlertInternalError},
		{"untrusted PROXY source", 403, keysrc.AlertHandshakeFailure},
		{noKeyReason(keysrc.Source{Kind: keysrc.SNI}), 400, keysrc.AlertUnrecognizedName},
		{"bad ClientHello: short", 400, keysrc.AlertDecodeError},
		{"direct preamble refused", 400, keysrc.AlertHandshakeFailure},
	} {
		if got := string(appendRefusal(nil, formLine, c.reason, 0)); got != "-ERR "+c.reason+"\n" {
			t.Errorf("%q as a line: %q", c.reason, got)
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(appendRefusal(nil, formHTTP, c.reason, 0))), nil)
		if err != nil || resp.StatusCode != c.status || resp.Close != true {
			t.Errorf("%q over HTTP: %v, %v; want status %d and a close", c.reason, resp, err, c.status)
		}
		if got := appendRefusal(nil, formAlert, c.reason, 0); !bytes.Equal(got, keysrc.Alert(c.alert)) {
			t.Errorf("%q as an alert: %v, want description %d", c.reason, got, c.alert)
		}
	}
	// A status given wins over the reason's.
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(appendRefusal(nil, formHTTP, "HTTP request head too large", 431))), nil)
	if err != nil || resp.StatusCode != 431 {
		t.Fatalf("431: %v, %v", resp, err)
	}
}
