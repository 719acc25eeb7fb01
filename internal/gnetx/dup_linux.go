package gnetx

import "golang.org/x/sys/unix"

// dupOnto makes newfd refer to oldfd's socket, close-on-exec.
func dupOnto(oldfd, newfd int) error { return unix.Dup3(oldfd, newfd, unix.O_CLOEXEC) }
