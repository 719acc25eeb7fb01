package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/subordinate/subordinate/internal/proctest"
)

// benchRun runs `subordinate bench` in this process against a real
// server and returns its exit code, stdout and stderr.
func benchRun(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"bench", "--conns", "2"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// TestBenchSaysWhy: a run that measures nothing says why, on stderr, with
// what to try: a server that does not echo (the default chat handler),
// the server's -ERR line, a TLS failure by its reason; and --tls-insecure
// skips verification.
func TestBenchSaysWhy(t *testing.T) {
	t.Parallel()
	chat := serve(t, 2, "--handler", "chat")
	strict := serve(t, 2, "--handler", "echo", "--max-key", "1")
	certFile, keyFile, _ := proctest.SelfSigned(t, "127.0.0.1")
	secure := serve(t, 2, "--handler", "echo", "--listen", "tls://127.0.0.1:0", "--cert", certFile, "--key", keyFile)
	plain := serve(t, 2, "--handler", "echo")

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"chat", []string{"--addr", chat.addr, "--duration", "10m", "--max-errors", "1"},
			[]string{`got back "joined room=`, "the server did not echo: is it running --handler echo?"}},
		{"-ERR", []string{"--addr", strict.addr, "--duration", "10m", "--max-errors", "1"},
			[]string{"-ERR key too long", "--max-key"}},
		{"untrusted", []string{"--addr", secure.addr, "--tls", "--duration", "10m", "--max-errors", "1"},
			[]string{"untrusted certificate", "x509: certificate signed by unknown authority", "--tls-ca FILE", "--tls-insecure"}},
		{"wrong name", []string{"--addr", secure.addr, "--tls", "--tls-ca", certFile, "--tls-server-name", "other.example", "--duration", "10m", "--max-errors", "1"},
			[]string{"wrong name", "other.example", "--tls-server-name NAME"}},
		{"not TLS", []string{"--addr", plain.addr, "--tls", "--tls-insecure", "--duration", "10m", "--max-errors", "1"},
			[]string{"not a TLS server", "drop --tls"}},
		{"TLS without --tls", []string{"--addr", secure.addr, "--duration", "10m", "--max-errors", "1"},
			[]string{"add --tls"}}, // short_read or reset, both say it
	} {
		code, out, errs := benchRun(tc.args...)
		if code != 1 || !strings.Contains(errs, "measured nothing") {
			t.Errorf("%s: exit %d, want 1 and 'measured nothing' in stderr:\n%s", tc.name, code, errs)
		}
		for _, w := range tc.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, w, errs)
			}
		}
		if !strings.Contains(out, "0 requests") {
			t.Errorf("%s: summary %q", tc.name, out)
		}
	}

	// The reasons are in the JSON too, for scripts.
	code, out, _ := benchRun("--addr", chat.addr, "--duration", "10m", "--max-errors", "1", "--json")
	var rep struct {
		Reasons map[string]string `json:"reasons"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &rep); code != 1 || err != nil || !strings.Contains(rep.Reasons["mismatch"], "joined room=") {
		t.Errorf("--json: exit %d, %v, reasons %v from %q", code, err, rep.Reasons, out)
	}

	// Verified with the CA, or not verified at all: both measure.
	for _, args := range [][]string{
		{"--tls", "--tls-ca", certFile},
		{"--tls", "--tls-insecure"},
	} {
		code, out, errs := benchRun(append([]string{"--addr", secure.addr, "--requests", "50"}, args...)...)
		if code != 0 || !strings.Contains(out, "50 requests") || !strings.Contains(out, "no errors") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errs)
		}
	}
}
