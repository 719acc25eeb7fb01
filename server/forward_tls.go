package server

import "runtime"

// spliceForwardedTLS reports how a worker relays the TLS connections it
// terminates for another worker (Config.ForwardTLS): true for the splice,
// false for the mesh relay. cpus is the number of CPUs the worker may run
// on.
func spliceForwardedTLS(cfg *Config, cpus int) bool {
	if cfg.Forward == ForwardRelay {
		return false // no hand-off links: nothing to pass a socketpair on
	}
	switch cfg.ForwardTLS {
	case ForwardTLSSplice, ForwardTLSHandoff:
		return true
	case ForwardTLSRelay:
		return false
	}
	// Auto: with a CPU per worker the splice's loops win; with workers
	// sharing CPUs, every hop is a context switch, and the mesh, whose
	// one link carries all the connections between two workers in
	// batches, wakes the other worker once for many of them.
	return cpus >= cfg.Workers
}

// handOffTLSSessions reports whether a worker hands off the TLS 1.3
// sessions it terminates for another worker (Config.ForwardTLS), before
// it splices or relays them.
func handOffTLSSessions(cfg *Config) bool {
	if cfg.Forward == ForwardRelay {
		return false // no hand-off links
	}
	return cfg.ForwardTLS == ForwardTLSAuto || cfg.ForwardTLS == ForwardTLSHandoff || cfg.ForwardTLS == ""
}

// usableCPUs is the number of CPUs this process may run on: on Linux,
// runtime.NumCPU counts the affinity mask the process started with
// (taskset, a cgroup's cpuset).
var usableCPUs = runtime.NumCPU
