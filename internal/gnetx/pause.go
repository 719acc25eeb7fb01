package gnetx

import (
	"errors"
	"fmt"
)

// ErrPauseUnsupported is returned by PauseAccepting where a listener
// cannot be taken out of the loop for a while (systems without Linux's
// /proc/self/fdinfo). The caller falls back to accepting and refusing.
var ErrPauseUnsupported = errors.New("gnetx: cannot pause accepting on this system")

// PauseAccepting takes every listener out of the loop for a while,
// without letting go of the sockets: no connection is accepted until
// ResumeAccepting, the open ones are served as before, and other
// processes that hold the same listening sockets go on accepting. It is
// what a worker does when a further accept would fail (its descriptor
// table is nearly full): gnet ends its loop on an accept error other than
// EAGAIN, ECONNABORTED or EINTR.
//
// It must be called on the loop. Pausing paused or stopped listeners does
// nothing. It returns ErrPauseUnsupported where that cannot be done,
// having changed nothing.
func (e *Engine) PauseAccepting() error {
	for i, st := range e.lns {
		if st.stopped || st.paused != nil {
			continue
		}
		p, err := pauseAccept(st.fd)
		if err != nil {
			if errors.Is(err, ErrPauseUnsupported) {
				return err
			}
			return fmt.Errorf("gnetx: pause accepting on listener %d: %w", i, err)
		}
		st.paused = p
	}
	return nil
}

// ResumeAccepting puts back the listeners PauseAccepting took out: the
// loop accepts again, starting with the connections that queued up
// meanwhile (those other processes did not take). It must be called on
// the loop.
func (e *Engine) ResumeAccepting() error {
	for i, st := range e.lns {
		if st.paused == nil {
			continue
		}
		if err := st.paused.resume(st.fd); err != nil {
			return fmt.Errorf("gnetx: resume accepting on listener %d: %w", i, err)
		}
		st.paused = nil
	}
	return nil
}

// Paused reports whether accepting is paused. It must be called on the
// loop.
func (e *Engine) Paused() bool {
	for _, st := range e.lns {
		if st.paused != nil {
			return true
		}
	}
	return false
}
