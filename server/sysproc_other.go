//go:build !linux

package server

import "syscall"

// workerSysProcAttr puts a worker in its own process group (a terminal's
// Ctrl-C reaches the master only, which drains the workers). There is no
// parent-death signal here: a worker notices the master is gone when its
// control channel reaches EOF.
func workerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
