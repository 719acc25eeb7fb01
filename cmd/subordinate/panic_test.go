package main

import (
	"testing"

	"github.com/subordinate/subordinate/internal/proctest"
)

// TestCrashOnPanicFlag: serve --crash-on-panic reaches the workers'
// config, and panics are recovered by default. (What each setting does
// with a panicking handler is tested with real processes in
// internal/testprog/lifecycle, whose handler can panic.)
func TestCrashOnPanicFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want bool
	}{{nil, false}, {[]string{"--crash-on-panic"}, true}} {
		s := serve(t, 1, tc.args...)
		s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Msg() == "worker serving" })
		for _, l := range s.Logs() {
			if l.Msg() == "worker serving" {
				if got, ok := l["crash_on_panic"].(bool); !ok || got != tc.want {
					t.Errorf("serve %v: the worker says crash_on_panic=%v, want %v", tc.args, l["crash_on_panic"], tc.want)
				}
			}
		}
	}
}
