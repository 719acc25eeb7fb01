package server

import "os"

// masterBinary is the program the master starts its workers from, found
// once when the master starts (openMasterBinary) and kept for its life.
type masterBinary struct {
	// path is what exec runs: /proc/self/fd/N on Linux, the path
	// os.Executable resolved elsewhere.
	path string
	// name describes the binary in logs and errors: the path it was
	// started from.
	name string
	// file keeps the master's executable open on Linux (nil elsewhere):
	// path names it through this descriptor.
	file *os.File
}

// close lets go of the binary; no worker may be started after it.
func (b *masterBinary) close() {
	if b.file != nil {
		b.file.Close()
	}
}
