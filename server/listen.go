package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/subordinate/subordinate/internal/ctl"
)

// masterListener is a listening socket the master bound for the workers.
type masterListener struct {
	spec ctl.Listener
	// fd is the listening socket. The master keeps it as a raw
	// descriptor, never in the Go runtime's poller: that poller would
	// wake the master for every connection the workers accept.
	fd int
	// unixPath is the socket file the master created, removed at close.
	unixPath string
}

// bindListeners binds every listener of cfg, or none: on error the ones
// bound are closed. A listener the old master of an upgrade handed over
// (inh, nil if none) is taken as it is.
func bindListeners(cfg *Config, inh *inheritance) ([]*masterListener, error) {
	return bindURLs(cfg.Listen, inh, "")
}

// bindURLs binds the listen URLs us, or none; what names each in an
// error ("" for the URL alone).
func bindURLs(us []string, inh *inheritance, what string) ([]*masterListener, error) {
	var lns []*masterListener
	for i, u := range us {
		if ln := inh.take(u); ln != nil {
			lns = append(lns, ln)
			continue
		}
		ln, err := bindListener(u)
		if err != nil {
			closeListeners(lns)
			if what != "" {
				err = fmt.Errorf("%s %d: %w", what, i, err)
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func bindListener(u string) (*masterListener, error) {
	a, err := ParseListenURL(u)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	if a.Network == "unix" {
		if err := removeStaleSocket(a.Address); err != nil {
			return nil, fmt.Errorf("listen %s: %w", u, err)
		}
	}
	if a.SocketFile.isSet() {
		// Created with no permission, then given its owner and mode.
		restore := restrictUmask()
		l, err := lc.Listen(context.Background(), a.Network, a.Address)
		umask := restore()
		if err == nil {
			if err = a.SocketFile.apply(a.Address, umask); err != nil {
				l.Close() // removes the file
			}
		}
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", u, err)
		}
		return finishListener(u, a, l)
	}
	l, err := lc.Listen(context.Background(), a.Network, a.Address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", u, err)
	}
	return finishListener(u, a, l)
}

// finishListener keeps a duplicate of the bound listener l outside the
// Go poller.
func finishListener(u string, a ListenAddr, l net.Listener) (*masterListener, error) {
	if ul, ok := l.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	ln := &masterListener{spec: ctl.Listener{Network: a.Network, Address: l.Addr().String(), URL: u}, fd: -1}
	if a.Network == "unix" {
		ln.unixPath = a.Address
	}
	// Keep a duplicate outside the Go poller and close the net.Listener.
	rc, err := l.(syscall.Conn).SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			ln.fd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		})
		if err == nil {
			err = cerr
		}
	}
	l.Close()
	if err != nil {
		ln.close()
		return nil, fmt.Errorf("listen %s: %w", u, err)
	}
	if a.Network == "tcp" {
		// Accepted sockets inherit TCP_NODELAY from the listener; gnet
		// sets it on the listeners it binds itself.
		_ = unix.SetsockoptInt(ln.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	return ln, nil
}

// removeStaleSocket removes a Unix socket file nobody listens on (left by
// a process that was killed). It leaves anything else alone: bind then
// reports "address already in use".
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		return nil
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return nil // live: bind will fail with address in use
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return os.Remove(path)
	}
	return nil
}

func (ln *masterListener) close() {
	if ln.fd >= 0 {
		syscall.Close(ln.fd)
		ln.fd = -1
	}
	if ln.unixPath != "" {
		os.Remove(ln.unixPath)
		ln.unixPath = ""
	}
}

func closeListeners(lns []*masterListener) {
	for _, ln := range lns {
		ln.close()
	}
}

// bindClusterListeners binds the cluster listener of each worker of a
// node (ClusterConfig.Listen, worker w on its port plus w), or none:
// outside a cluster, or on error. Listeners the old master of an upgrade
// handed over (inh) are taken as they are.
func bindClusterListeners(cfg *Config, inh *inheritance) ([]*masterListener, error) {
	if !cfg.Cluster.Enabled() {
		return nil, nil
	}
	us := make([]string, cfg.Workers)
	for w := range us {
		u, err := cfg.Cluster.workerListen(w)
		if err != nil {
			return nil, err
		}
		us[w] = u
	}
	return bindURLs(us, inh, "cluster listener of worker")
}
