//go:build !darwin

package server

import "golang.org/x/sys/unix"

// tcpKeepIdle is the socket option of the idle time before the first
// keep-alive probe.
const tcpKeepIdle = unix.TCP_KEEPIDLE
