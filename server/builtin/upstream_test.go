package builtin

import (
	"strings"
	"testing"
)

func TestUpstream(t *testing.T) {
	for _, tc := range []struct {
		template      string
		shard         int
		network, addr string
	}{
		{"tcp://127.0.0.1:{9000+shard}", 3, "tcp", "127.0.0.1:9003"},
		{"tcp://127.0.0.1:{ 9000 + shard }", 0, "tcp", "127.0.0.1:9000"},
		{"tcp://[::1]:{shard+7100}", 2, "tcp", "[::1]:7102"},
		{"unix:///run/app/{shard}.sock", 3, "unix", "/run/app/3.sock"},
		{"unix:///run/{shard}/app-{shard+1}.sock", 4, "unix", "/run/4/app-5.sock"},
		{"tcp://10.0.0.9:80", 5, "tcp", "10.0.0.9:80"},
		{"127.0.0.1:{9000+shard}", 3, "tcp", "127.0.0.1:9003"},
		{"localhost:80", 1, "tcp", "localhost:80"},
		{"/run/app/{shard}.sock", 2, "unix", "/run/app/2.sock"},
	} {
		u, err := ParseUpstream(tc.template)
		if err != nil {
			t.Fatalf("%s: %v", tc.template, err)
		}
		n, a, err := u.Expand(tc.shard)
		if err != nil || n != tc.network || a != tc.addr {
			t.Errorf("%s shard %d: %s %s %v, want %s %s", tc.template, tc.shard, n, a, err, tc.network, tc.addr)
		}
	}
	for _, bad := range []string{
		"", "127.0.0.1", "http://x/{shard}", "tcp://h:{port}", "tcp://h:{shard*2}",
		"tcp://h:{9000+shard", "unix://relative/{shard}", "tcp://h:9000/path",
	} {
		if _, err := ParseUpstream(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
	for in, want := range map[string]string{
		"":            "want tcp://HOST:PORT, unix:///path or HOST:PORT",
		"127.0.0.1":   "want tcp://HOST:PORT",
		"http://x:1":  "want tcp://HOST:PORT, unix:///path or HOST:PORT",
		"::1:{shard}": "want tcp://HOST:PORT",
	} {
		if _, err := ParseUpstream(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", in, err, want)
		}
	}
}
