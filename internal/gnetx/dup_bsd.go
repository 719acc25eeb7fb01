//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package gnetx

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// dupOnto makes newfd refer to oldfd's socket, close-on-exec.
func dupOnto(oldfd, newfd int) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := unix.Dup2(oldfd, newfd); err != nil {
		return err
	}
	syscall.CloseOnExec(newfd)
	return nil
}
