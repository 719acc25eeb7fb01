package gnetx

import (
	"fmt"
	"syscall"
)

// release puts /dev/null on descriptor fd: the socket it held is let go by
// this process, and gnet's later close of fd is harmless.
func release(fd int) error {
	null, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/null: %w", err)
	}
	defer syscall.Close(null)
	if err := dupOnto(null, fd); err != nil {
		return fmt.Errorf("dup /dev/null onto %d: %w", fd, err)
	}
	return nil
}
