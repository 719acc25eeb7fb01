package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/subordinate/subordinate/internal/proctest"
)

// TestBenchTLSResume: with --tls-resume the connections of a connect run
// against one real TLS worker resume their sessions, and the counts reach
// the summary and the JSON; without it every handshake is full; and
// --tls-resume needs --tls.
func TestBenchTLSResume(t *testing.T) {
	t.Parallel()
	certFile, keyFile, _ := proctest.SelfSigned(t, "127.0.0.1")
	srv := serve(t, 1, "--handler", "echo", "--listen", "tls://127.0.0.1:0", "--cert", certFile, "--key", keyFile)
	for _, resume := range []bool{true, false} {
		args := []string{"--addr", srv.addr, "--tls", "--tls-ca", certFile, "--mode", "connect", "--requests", "100", "--json"}
		if resume {
			args = append(args, "--tls-resume")
		}
		code, out, errs := benchRun(args...)
		var rep struct {
			Handshakes int64 `json:"tls_handshakes"`
			Resumed    int64 `json:"tls_resumed"`
		}
		if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &rep); code != 0 || err != nil {
			t.Fatalf("resume %v: exit %d, %v\n%s%s", resume, code, err, out, errs)
		}
		// benchRun runs 2 connections: each one's first handshake may
		// find no session yet.
		if rep.Handshakes < 100 || (resume && rep.Resumed < rep.Handshakes-2) || (!resume && rep.Resumed != 0) {
			t.Errorf("resume %v: %d handshakes, %d resumed", resume, rep.Handshakes, rep.Resumed)
		}
		if !strings.Contains(errs, " TLS handshakes, ") {
			t.Errorf("resume %v: no handshake line in the summary:\n%s", resume, errs)
		}
	}
	if code, _, errs := benchRun("--addr", srv.addr, "--tls-resume", "--requests", "1"); code != 2 || !strings.Contains(errs, "need --tls") {
		t.Errorf("--tls-resume without --tls: exit %d, %s", code, errs)
	}
}
