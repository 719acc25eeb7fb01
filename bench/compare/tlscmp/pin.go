//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// pinSelf moves every thread of this process (the load generator) to
// cpus with taskset; threads started later inherit it. GOMAXPROCS follows,
// as it would for a client started under taskset.
func pinSelf(cpus string) error {
	n, err := countCPUs(cpus)
	if err != nil {
		return err
	}
	if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
		return fmt.Errorf("taskset %s: %v: %s", cpus, err, out)
	}
	runtime.GOMAXPROCS(n)
	return nil
}

// unpinSelf lets this process run on every CPU again.
func unpinSelf(ncpu int) error {
	all := fmt.Sprintf("0-%d", ncpu-1)
	if out, err := exec.Command("taskset", "-a", "-p", "-c", all, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
		return fmt.Errorf("taskset %s: %v: %s", all, err, out)
	}
	runtime.GOMAXPROCS(ncpu)
	return nil
}

// countCPUs counts the CPUs of a taskset list such as "1", "0-3" or
// "0,2-3".
func countCPUs(list string) (int, error) {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0, fmt.Errorf("CPU list %q: bad %q", list, part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, fmt.Errorf("CPU list %q: bad %q", list, part)
			}
		}
		n += b - a + 1
	}
	return n, nil
}
