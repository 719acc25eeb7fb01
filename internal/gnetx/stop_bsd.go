//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package gnetx

// stopAccept takes listening socket fd out of gnet's kqueue and lets it
// go. kqueue, unlike epoll, drops the events of a descriptor when the
// descriptor is closed, whoever else holds the socket (kqueue(2): "Calling
// close() on a file descriptor will remove any kevents that reference the
// descriptor"); dup2 closes its target first. So putting /dev/null on fd is
// enough. (Compiled for these systems, tested on Linux only.)
func stopAccept(fd int) error { return release(fd) }
