package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/subordinate/subordinate/frame"
)

// TestFrames: the binary and direct preambles are what package frame
// decodes, in every mode; a wrong secret is a preamble error.
func TestFrames(t *testing.T) {
	secret := []byte("bench-secret")
	for _, tc := range []struct {
		frame Frame
		enc   frame.Encoding
	}{
		{FrameBinary, frame.Binary},
		{FrameDirect, frame.Line},
		{FrameDirectBinary, frame.Binary},
	} {
		srv := startEcho(t, "tcp", "127.0.0.1:0", nil, func(s *echoServer) {
			s.enc, s.secret, s.shards = tc.enc, secret, 3
		})
		for _, mode := range []Mode{PingPong, Pipeline, Connect} {
			cfg := Config{Addr: srv.addr(), Frame: tc.frame, Mode: mode, Conns: 3, Requests: 90, Keys: 30}
			if tc.frame != FrameBinary {
				cfg.Secret, cfg.Shards = secret, 3
			}
			checkClean(t, runOK(t, cfg), 90)
		}
		keys := srv.keyCounts()
		if tc.frame == FrameBinary {
			if keys["k0"] == 0 {
				t.Errorf("%v: keys %v: want k0, k1...", tc.frame, keys)
			}
			continue
		}
		for shard := 0; shard < 3; shard++ {
			if keys[fmt.Sprintf("!%d", shard)] == 0 {
				t.Errorf("%v: keys %v: want every shard addressed", tc.frame, keys)
			}
		}
		res := runOK(t, Config{Addr: srv.addr(), Frame: tc.frame, Conns: 1, Duration: 2 * time.Second, Secret: []byte("wrong"), Shards: 3})
		if res.Requests != 0 || res.Errors[KindPreamble] == 0 {
			t.Errorf("%v with a wrong secret: requests %d, errors %v", tc.frame, res.Requests, res.Errors)
		}
	}
}
