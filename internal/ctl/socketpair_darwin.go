package ctl

import (
	"fmt"
	"os"
	"syscall"
)

// Socketpair returns the two ends of a new Unix stream socketpair, both
// close-on-exec. The master makes control channels and mesh links with it.
func Socketpair() (a, b *os.File, err error) {
	// darwin has no SOCK_CLOEXEC: hold ForkLock so that no child is
	// started between socketpair and the close-on-exec flags.
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("ctl: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "socketpair"), os.NewFile(uintptr(fds[1]), "socketpair"), nil
}
