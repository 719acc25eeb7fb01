package gnetx

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/panjf2000/gnet/v2"

	"golang.org/x/sys/unix"
)

// maxScanFD bounds the descriptor scan where /dev/fd cannot list them.
const maxScanFD = 1 << 16

// openFDs lists this process's open descriptors.
func openFDs() []int {
	var fds []int
	if ents, err := os.ReadDir("/dev/fd"); err == nil && len(ents) > 3 {
		for _, ent := range ents {
			if fd, err := strconv.Atoi(ent.Name()); err == nil {
				fds = append(fds, fd)
			}
		}
		return fds
	}
	// FreeBSD without fdescfs lists only 0-2 in /dev/fd.
	limit := maxScanFD
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && uint64(rl.Cur) < uint64(limit) {
		limit = int(rl.Cur)
	}
	for fd := 0; fd < limit; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			fds = append(fds, fd)
		}
	}
	return fds
}

// findListener returns the one listening socket of this process bound to
// the address match ("127.0.0.1:PORT").
func findListener(match string) (int, error) {
	found := -1
	for _, fd := range openFDs() {
		if !listening(fd) {
			continue
		}
		if a, err := sockname(fd); err != nil || a.String() != match {
			continue
		}
		if found >= 0 {
			return -1, fmt.Errorf("two listening sockets on %s (descriptors %d and %d)", match, found, fd)
		}
		found = fd
	}
	if found < 0 {
		return -1, fmt.Errorf("gnet's listening socket on %s not found", match)
	}
	return found, nil
}

// findBound returns the descriptor of the listener gnet bound itself to
// bind ("tcp://HOST:PORT"): the socket of gnet's DupListener, by inode.
// Several engines of one process may bind the same address with
// SO_REUSEPORT, so the address alone does not tell.
func findBound(eng gnet.Engine, bind string) (int, error) {
	_, host, _ := strings.Cut(bind, "://")
	dup, err := eng.DupListener("tcp", host)
	if err != nil {
		return -1, fmt.Errorf("gnet has no listener for %s: %w", bind, err)
	}
	defer syscall.Close(dup)
	var want unix.Stat_t
	if err := unix.Fstat(dup, &want); err != nil {
		return -1, fmt.Errorf("fstat: %w", err)
	}
	if want.Ino == 0 {
		return -1, fmt.Errorf("cannot tell sockets apart on this system (no inode)")
	}
	found := -1
	for _, fd := range openFDs() {
		var st unix.Stat_t
		if fd == dup || !listening(fd) || unix.Fstat(fd, &st) != nil || st.Ino != want.Ino || st.Dev != want.Dev {
			continue
		}
		if found >= 0 {
			return -1, fmt.Errorf("two descriptors for gnet's listener on %s (%d and %d)", bind, found, fd)
		}
		found = fd
	}
	if found < 0 {
		return -1, fmt.Errorf("gnet's listening socket on %s not found", bind)
	}
	return found, nil
}

func listening(fd int) bool {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	return err == nil && v != 0
}

// sockname returns the local address of a stream socket.
func sockname(fd int) (net.Addr, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}, nil
	case *unix.SockaddrInet6:
		a := &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a, nil
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}, nil
	}
	return nil, errors.New("getsockname: not a TCP or Unix socket")
}

// cloexecSocket makes a close-on-exec socket on every platform.
func cloexecSocket(domain, typ, proto int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := syscall.Socket(domain, typ, proto)
	if err != nil {
		return -1, err
	}
	syscall.CloseOnExec(fd)
	return fd, nil
}

// reservePort binds a socket (not listening) to a free loopback port with
// SO_REUSEPORT, so that gnet can bind its placeholder listener to the
// same port and no other listener can.
func reservePort() (fd, port int, err error) {
	fd, err = cloexecSocket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("gnetx: reserve a placeholder port: %w", err)
	}
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	}
	var sa unix.Sockaddr
	if err == nil {
		sa, err = unix.Getsockname(fd)
	}
	if err != nil {
		syscall.Close(fd)
		return -1, 0, fmt.Errorf("gnetx: reserve a placeholder port: %w", err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port, nil
}

// socketpair returns the two ends of a Unix stream socketpair.
func socketpair() (*os.File, *os.File, error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "anchor"), os.NewFile(uintptr(fds[1]), "anchor"), nil
}

// checkListening returns an error unless fd is a listening stream socket.
func checkListening(fd int) error {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("descriptor %d is not a socket: %w", fd, err)
	}
	if typ != unix.SOCK_STREAM {
		return fmt.Errorf("descriptor %d is not a stream socket", fd)
	}
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v == 0 {
		return fmt.Errorf("descriptor %d is not listening", fd)
	}
	return nil
}
