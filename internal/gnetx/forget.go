package gnetx

import (
	"errors"
	"fmt"
)

// ErrForgetUnsupported is returned by Forget where a connection's socket
// cannot be taken from gnet before it closes it (Linux without /proc).
var ErrForgetUnsupported = errors.New("gnetx: cannot take a socket from gnet on this system")

// Forget takes the socket of a gnet connection out of gnet's hands,
// while gnet closes that connection: it must be called on the loop, in
// OnClose, by a caller that keeps a duplicate of the socket. gnet, after
// OnClose, writes what is left in the connection's outbound buffer (as
// much as the socket takes at once, dropping the rest) and closes the
// descriptor. The caller that goes on writing to the socket itself wants
// neither: it sends the unsent bytes itself, in order. Forget removes the
// socket from gnet's poller and puts /dev/null (read-only) on descriptor
// fd, so that gnet's last write fails and its close releases nothing but
// /dev/null.
func (e *Engine) Forget(fd int) error {
	if err := forget(e, fd); err != nil {
		if errors.Is(err, ErrForgetUnsupported) {
			return err
		}
		return fmt.Errorf("gnetx: forget descriptor %d: %w", fd, err)
	}
	return nil
}
