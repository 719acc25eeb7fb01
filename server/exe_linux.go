package server

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// exeFDFloor is the lowest descriptor number the master keeps its
// executable on. A worker is exec'd from /proc/self/fd/N, which the kernel
// resolves in the child after os/exec has arranged the child's descriptors:
// it puts stdin, stdout, stderr and ExtraFiles on 0..3 and, to do so, may
// first move some of them to the numbers just above (from 4, one per
// file, plus its error pipe). N must be none of those, or the child would
// exec whatever was moved there; 64 is well clear of them.
const exeFDFloor = 64

// openMasterBinary opens the executable this process runs, through
// /proc/self/exe (the very file the kernel mapped, whatever has since
// happened to its path), and keeps it open on a close-on-exec descriptor
// of at least exeFDFloor. Workers are exec'd from /proc/self/fd/N: a
// worker restarted after a deploy replaced the file on disk (rename: a
// new inode at the path, the old one lives on while open) runs the same
// code as its master. Overwriting the file in place cannot happen while
// the master runs: Linux refuses to open a running executable for
// writing (ETXTBSY, "Text file busy"), which is why a deploy must rename
// a new file into place (install(1), mv), not copy over the old one.
//
// Without /proc (a chroot, a container without it) it falls back to the
// path os.Executable resolves, with a warning: then a replaced file is
// what a restarted worker runs, and the control protocol's version check
// is all that stands between a master and a worker of another version.
func openMasterBinary(log *slog.Logger) (*masterBinary, error) {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		exe, xerr := os.Executable()
		if xerr != nil {
			return nil, fmt.Errorf("find this program to start workers: %w", xerr)
		}
		log.Warn("cannot open /proc/self/exe: a worker restarted after this program's file is replaced will run the new file", "path", exe, "err", err)
		return &masterBinary{path: exe, name: exe}, nil
	}
	name, err := os.Executable() // for logs only
	if err != nil {
		name = "/proc/self/exe"
	}
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, exeFDFloor)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("keep this program open to start workers: %w", err)
	}
	return &masterBinary{
		path: "/proc/self/fd/" + strconv.Itoa(fd),
		name: name,
		file: os.NewFile(uintptr(fd), name),
	}, nil
}

// nameWorker gives this worker process the name its master has. A
// process exec'd from /proc/self/fd/N is named "N" by the kernel (its
// comm, what top, pgrep and ps -o comm show), not after its argv[0].
// Best effort: the name is cosmetic.
func nameWorker() {
	name := filepath.Base(os.Args[0])
	if len(name) > 15 { // TASK_COMM_LEN - 1
		name = name[:15]
	}
	_ = os.WriteFile("/proc/self/comm", []byte(name), 0)
}
