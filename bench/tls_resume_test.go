package bench

import (
	"crypto/tls"
	"errors"
	"testing"
)

// TestTLSResume checks that with TLSResume every connection but the first
// of each client resumes, for TLS 1.3 and 1.2, that without it none does,
// and that the counts reach the Report.
func TestTLSResume(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := startEcho(t, "tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil)
	const conns, requests = 2, 200
	for _, v := range []struct {
		name string
		max  uint16
	}{{"1.3", tls.VersionTLS13}, {"1.2", tls.VersionTLS12}} {
		for _, resume := range []bool{true, false} {
			name := v.name + "/full"
			if resume {
				name = v.name + "/resumed"
			}
			t.Run(name, func(t *testing.T) {
				res := runOK(t, Config{Addr: srv.addr(), Mode: Connect, Conns: conns, Requests: requests,
					TLS: &tls.Config{RootCAs: pool, MaxVersion: v.max}, TLSResume: resume})
				checkClean(t, res, requests)
				if res.TLSHandshakes < requests {
					t.Fatalf("%d handshakes counted for %d requests", res.TLSHandshakes, res.Requests)
				}
				// Each client's first handshake finds the cache empty
				// at worst; every later one has a session to resume.
				if resume && res.TLSResumed < res.TLSHandshakes-conns {
					t.Fatalf("%d of %d handshakes resumed, want all but at most %d", res.TLSResumed, res.TLSHandshakes, conns)
				}
				if !resume && res.TLSResumed != 0 {
					t.Fatalf("%d handshakes resumed without TLSResume", res.TLSResumed)
				}
				rep := res.Report()
				if rep.TLSHandshakes != res.TLSHandshakes || rep.TLSResumed != res.TLSResumed {
					t.Fatalf("report %d/%d, result %d/%d", rep.TLSResumed, rep.TLSHandshakes, res.TLSResumed, res.TLSHandshakes)
				}
			})
		}
	}
	t.Run("needs TLS", func(t *testing.T) {
		if err := (Config{TLSResume: true}).Verify(); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("Verify: %v, want ErrInvalidConfig", err)
		}
	})
}
