//go:build !linux

package gnetx

// forget puts /dev/null on fd: kqueue drops the events of a descriptor
// when it is closed, which dup2 does first.
func forget(_ *Engine, fd int) error { return release(fd) }

// epoll is Linux's.
func (e *Engine) epoll() (int, error) { return -1, ErrForgetUnsupported }
