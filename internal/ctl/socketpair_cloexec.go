//go:build linux || freebsd || dragonfly || netbsd || openbsd

package ctl

import (
	"fmt"
	"os"
	"syscall"
)

// Socketpair returns the two ends of a new Unix stream socketpair, both
// close-on-exec. The master makes control channels and mesh links with it.
func Socketpair() (a, b *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("ctl: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "socketpair"), os.NewFile(uintptr(fds[1]), "socketpair"), nil
}
