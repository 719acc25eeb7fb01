package gnetx

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// stopAccept takes listening socket fd out of gnet's epoll instance and
// lets it go.
//
// Closing fd (or dup2 over it) would not be enough: epoll keys a
// registration by descriptor number and open file description, and drops
// it only when the description is released; the master and the other
// workers hold the same description, so the registration would stay,
// level-triggered, and the loop would call accept on whatever fd then is
// (gnet stops the whole loop on an accept error). So: find gnet's epoll
// instance, the one /proc/self/fdinfo shows watching fd with this socket's
// inode, EPOLL_CTL_DEL there, then put /dev/null on fd.
func stopAccept(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	eps, err := epollsWatching(fd, st.Ino)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStopAcceptUnsupported, err)
	}
	switch len(eps) {
	case 0:
		return fmt.Errorf("no epoll instance watches descriptor %d", fd)
	case 1:
	default:
		return fmt.Errorf("%d epoll instances watch descriptor %d", len(eps), fd)
	}
	if err := unix.EpollCtl(eps[0], unix.EPOLL_CTL_DEL, fd, nil); err != nil {
		return fmt.Errorf("epoll_ctl del: %w", err)
	}
	return release(fd)
}

// epollsWatching returns the epoll descriptors of this process that watch
// descriptor fd whose file has inode ino.
func epollsWatching(fd int, ino uint64) ([]int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var eps []int
	for _, ent := range ents {
		ep, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		if link, err := os.Readlink("/proc/self/fd/" + ent.Name()); err != nil || link != "anon_inode:[eventpoll]" {
			continue
		}
		ok, err := epollWatches(ep, fd, ino)
		if err != nil {
			return nil, err
		}
		if ok {
			eps = append(eps, ep)
		}
	}
	return eps, nil
}

// epollWatches reads /proc/self/fdinfo/EP, whose lines for watched
// descriptors look like
//
//	tfd:        7 events:       19 data:                7  pos:0 ino:2a1f sdev:8
func epollWatches(ep, fd int, ino uint64) (bool, error) {
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(ep))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil // closed meanwhile
		}
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "tfd:" {
			continue
		}
		if tfd, err := strconv.Atoi(fields[1]); err != nil || tfd != fd {
			continue
		}
		for _, fl := range fields[2:] {
			if v, ok := strings.CutPrefix(fl, "ino:"); ok {
				if n, err := strconv.ParseUint(v, 16, 64); err == nil && n == ino {
					return true, nil
				}
			}
		}
	}
	return false, sc.Err()
}
