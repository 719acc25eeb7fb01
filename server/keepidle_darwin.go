package server

import "golang.org/x/sys/unix"

// tcpKeepIdle is the socket option of the idle time before the first
// keep-alive probe (darwin names it TCP_KEEPALIVE).
const tcpKeepIdle = unix.TCP_KEEPALIVE
