package server

import (
	"context"
	"testing"
)

// TestSpliceForwardedTLS: ForwardTLS picks the splice or the mesh relay;
// auto splices when every worker can have a CPU of its own; relay mode
// always relays.
func TestSpliceForwardedTLS(t *testing.T) {
	for _, c := range []struct {
		forward, forwardTLS string
		workers, cpus       int
		want                bool
	}{
		{ForwardHandoff, ForwardTLSAuto, 2, 2, true},
		{ForwardHandoff, ForwardTLSAuto, 2, 8, true},
		{ForwardHandoff, ForwardTLSAuto, 4, 2, false},
		{ForwardHandoff, ForwardTLSAuto, 2, 1, false},
		{ForwardHandoff, "", 2, 1, false}, // a Config from before the field: auto
		{ForwardHandoff, ForwardTLSSplice, 4, 1, true},
		{ForwardHandoff, ForwardTLSRelay, 2, 8, false},
		{ForwardRelay, ForwardTLSSplice, 2, 8, false},
	} {
		cfg := DefaultConfig()
		cfg.Forward, cfg.ForwardTLS, cfg.Workers = c.forward, c.forwardTLS, c.workers
		if got := spliceForwardedTLS(&cfg, c.cpus); got != c.want {
			t.Errorf("forward %s, forward TLS %q, %d workers on %d CPUs: splice %v, want %v", c.forward, c.forwardTLS, c.workers, c.cpus, got, c.want)
		}
	}
	cfg := DefaultConfig()
	cfg.ForwardTLS = "copy"
	if err := cfg.Validate(); err == nil {
		t.Error(`ForwardTLS "copy" accepted`)
	}
}

// TestTLSRelayedOverMesh: with ForwardTLS relay in hand-off mode, a TLS
// connection for another worker goes over the mesh, as in relay mode: it
// echoes, and a mesh stream carried it.
func TestTLSRelayedOverMesh(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, ForwardHandoff, func(c *Config) { c.ForwardTLS = ForwardTLSRelay })
	hs.enableTLS()
	hs.startBoth()
	c := hs.dialTLS(t, hs.ownTLS[0], keyFor(1, "tls-relay", 0), nil)
	if in := c.readInfo(t); in["via"] != "0" || in["shard"] != "1" || in["relayed"] != "true" {
		t.Fatalf("info %v: want shard 1 via 0, relayed", in)
	}
	c.echo(t, "over the mesh\n")
	var opened uint64
	for _, p := range hs.rt[0].stats(context.Background()).Mesh {
		opened += p.Opened
	}
	if opened == 0 {
		t.Error("the accepting worker opened no mesh stream for a relayed TLS connection")
	}
}
