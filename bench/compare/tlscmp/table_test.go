//go:build linux

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/subordinate/subordinate/bench"
)

func TestTableWrite(t *testing.T) {
	hs := workload{name: "handshakes/s, TLS 1.3, resumed", mode: bench.Connect}
	echo := workload{name: "echo req/s, 1 KiB ping-pong", mode: bench.PingPong}
	tb := &table{
		heading:   "Pinned.",
		workloads: []workload{hs, echo},
		servers:   []string{"std", "sub", "hap"},
		base:      0, haproxy: 2, backends: 2,
		notes: []string{"A note."},
	}
	tb.cells = [][]cell{
		{
			{rps: []float64{900, 1000, 1100}, cpu: []float64{200, 100, 300}, client: []float64{300, 310, 290}, resumed: []float64{0.99, 1, 0.98}},
			{rps: []float64{500, 500, 500}, cpu: []float64{400, 400, 400}, resumed: []float64{0.5, 0.5, 0.5}},
			{rps: []float64{250, 250, 250}, cpu: []float64{800, 800, 800}, frontCPU: []float64{600, 600, 600}, resumed: []float64{1, 1, 1}},
		},
		{
			{rps: []float64{10000}, cpu: []float64{10}},
			{rps: []float64{0}, cpu: []float64{0}, errors: 3, reason: "tls: boom"}, // nothing measured
			{rps: []float64{5000}, cpu: []float64{40}, frontCPU: []float64{25}},
		},
	}
	var b bytes.Buffer
	tb.write(&b)
	want := `Pinned.

| workload | server | per second | × crypto/tls | × HAProxy | server CPU µs per op | × crypto/tls | × HAProxy | resumed |
|---|---|--:|--:|--:|--:|--:|--:|--:|
| handshakes/s, TLS 1.3, resumed | std | 1000 | 1.00 | 4.00 | 200.0 | 1.00 | 0.25 | 99% |
| handshakes/s, TLS 1.3, resumed | sub | 500 | 0.50 | 2.00 | 400.0 | 2.00 | 0.50 | 50% |
| handshakes/s, TLS 1.3, resumed | hap | 250 | 0.25 | 1.00 | 800.0 | 4.00 | 1.00 | 100% |
| echo req/s, 1 KiB ping-pong | std | 10000 | 1.00 | 2.00 | 10.0 | 1.00 | 0.25 | – |
| echo req/s, 1 KiB ping-pong | sub | – | – | – | – | – | – | – |
| echo req/s, 1 KiB ping-pong | hap | 5000 | 0.50 | 1.00 | 40.0 | 4.00 | 1.00 | – |

HAProxy's own process, without its 2 backends, server CPU µs per op: TLS 1.3, resumed 600.0; 1 KiB ping-pong 25.0.
The load generator's own CPU µs per op (a rate is bounded by it where it is busy all the time: 1e6 / its µs per op on its one CPU, pinned): TLS 1.3, resumed: std 300.0, sub –, hap –; 1 KiB ping-pong: std –, sub –, hap –.
A note.
Errors: sub, echo req/s, 1 KiB ping-pong: 3 errors (tls: boom).

`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}

	// Without the HAProxy row and without the crypto/tls row, their
	// ratios are "–" and there is no note on HAProxy alone.
	tb.haproxy, tb.base = -1, -1
	b.Reset()
	tb.write(&b)
	if !strings.Contains(b.String(), "| handshakes/s, TLS 1.3, resumed | sub | 500 | – | – | 400.0 | – | – | 50% |\n") ||
		strings.Contains(b.String(), "HAProxy's own process") {
		t.Errorf("without base and HAProxy rows:\n%s", b.String())
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 3}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestCountCPUs(t *testing.T) {
	for list, want := range map[string]int{"0": 1, "1": 1, "0-3": 4, "0,2-3": 3} {
		if got, err := countCPUs(list); err != nil || got != want {
			t.Errorf("countCPUs(%q) = %d, %v; want %d", list, got, err, want)
		}
	}
	for _, bad := range []string{"", "a", "3-1", "1-", "-1"} {
		if _, err := countCPUs(bad); err == nil {
			t.Errorf("countCPUs(%q): no error", bad)
		}
	}
}

func TestPinSettingsAndRows(t *testing.T) {
	for _, c := range []struct {
		pin  string
		ncpu int
		want string
	}{{"both", 2, "[true false]"}, {"on", 2, "[true]"}, {"off", 2, "[false]"}, {"both", 1, "[false]"}, {"on", 1, "[false]"}} {
		got, err := pinSettings(c.pin, c.ncpu)
		if err != nil || fmtBools(got) != c.want {
			t.Errorf("pinSettings(%q, %d) = %v, %v; want %s", c.pin, c.ncpu, got, err, c.want)
		}
	}
	if _, err := pinSettings("sometimes", 2); err == nil {
		t.Error("pinSettings accepted sometimes")
	}
	rows, err := parseRows("std, haproxy")
	if err != nil || len(rows) != 2 || !rows["std"] || !rows["haproxy"] {
		t.Errorf("parseRows: %v, %v", rows, err)
	}
	if _, err := parseRows("std,nginx"); err == nil {
		t.Error("parseRows accepted nginx")
	}
}

func fmtBools(b []bool) string {
	s := make([]string, len(b))
	for i, v := range b {
		s[i] = "false"
		if v {
			s[i] = "true"
		}
	}
	return "[" + strings.Join(s, " ") + "]"
}

func TestStatTicks(t *testing.T) {
	line := "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 3 0 100 1000 50 18446744073709551615\n"
	if got := statTicks(line); got != 22 {
		t.Errorf("statTicks = %d, want 22", got)
	}
	if got := statTicks("garbage"); got != 0 {
		t.Errorf("statTicks(garbage) = %d, want 0", got)
	}
}
