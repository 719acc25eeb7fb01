package server

import "syscall"

// workerSysProcAttr puts a worker in its own process group (a terminal's
// Ctrl-C reaches the master only, which drains the workers) and has the
// kernel kill it if the thread that started it dies (Pdeathsig; the
// spawner keeps that thread for the master's lifetime).
func workerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
