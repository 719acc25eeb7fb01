//go:build !linux

package gnetx

// pausedListener is never made here: see pauseAccept.
type pausedListener struct{}

// pauseAccept would need gnet's kqueue descriptor, which gnet does not
// expose and BSD systems do not list for a process.
func pauseAccept(int) (*pausedListener, error) { return nil, ErrPauseUnsupported }

func (*pausedListener) resume(int) error { return nil }
