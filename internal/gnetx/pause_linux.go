package gnetx

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pausedListener is how to put a listener back into gnet's epoll
// instance: the instance, and the events and data gnet registered it
// with, as /proc/self/fdinfo showed them.
type pausedListener struct {
	ep     int
	events uint32
	data   uint64
}

// pauseAccept takes listening socket fd out of gnet's epoll instance,
// keeping the descriptor, and returns what resume needs.
func pauseAccept(fd int) (*pausedListener, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("fstat: %w", err)
	}
	eps, err := epollsWatching(fd, st.Ino)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPauseUnsupported, err)
	}
	if len(eps) != 1 {
		return nil, fmt.Errorf("%d epoll instances watch descriptor %d, want 1", len(eps), fd)
	}
	p := &pausedListener{ep: eps[0]}
	if p.events, p.data, err = epollRegistration(p.ep, fd); err != nil {
		return nil, err
	}
	if err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return nil, fmt.Errorf("epoll_ctl del: %w", err)
	}
	return p, nil
}

// resume registers fd again as it was.
func (p *pausedListener) resume(fd int) error {
	ev := unix.EpollEvent{Events: p.events, Fd: int32(uint32(p.data)), Pad: int32(uint32(p.data >> 32))}
	if err := unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	return nil
}

// epollRegistration reads the events and data that epoll instance ep
// watches descriptor fd with, from its fdinfo line
//
//	tfd:        7 events:       19 data:                7  pos:0 ino:2a1f sdev:8
//
// (events and data in hexadecimal).
func epollRegistration(ep, fd int) (events uint32, data uint64, err error) {
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(ep))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[0] != "tfd:" || fields[1] != strconv.Itoa(fd) {
			continue
		}
		if fields[2] != "events:" || fields[4] != "data:" {
			break
		}
		ev, err1 := strconv.ParseUint(fields[3], 16, 32)
		d, err2 := strconv.ParseUint(fields[5], 16, 64)
		if err1 != nil || err2 != nil {
			break
		}
		return uint32(ev), d, nil
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return 0, 0, fmt.Errorf("epoll %d: no readable registration of descriptor %d", ep, fd)
}
