package gnetx

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// forget deletes fd from gnet's epoll instance, then puts /dev/null on
// it. The instance is found once, by the listener it watches.
func forget(e *Engine, fd int) error {
	ep, err := e.epoll()
	if err != nil {
		return err
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return fmt.Errorf("epoll_ctl del: %w", err)
	}
	return release(fd)
}

// epoll returns gnet's epoll descriptor, found by the first listener it
// watches, once: by Start, or else by the first call (on the loop, so no
// listener is being paused or stopped meanwhile).
func (e *Engine) epoll() (int, error) {
	if ep := e.ep.Load(); ep > 0 {
		return int(ep), nil
	}
	for _, st := range e.lns {
		if st.stopped || st.paused != nil {
			continue
		}
		var s unix.Stat_t
		if err := unix.Fstat(st.fd, &s); err != nil {
			return -1, fmt.Errorf("fstat: %w", err)
		}
		eps, err := epollsWatching(st.fd, s.Ino)
		if err != nil {
			return -1, fmt.Errorf("%w: %v", ErrForgetUnsupported, err)
		}
		if len(eps) == 1 {
			e.ep.Store(int64(eps[0]))
			return eps[0], nil
		}
	}
	return -1, fmt.Errorf("%w: gnet's epoll instance not found", ErrForgetUnsupported)
}
