package server

import (
	"time"

	"golang.org/x/sys/unix"
)

// closeWriteRetry is how often a local CloseWrite or Close looks again whether
// gnet has sent what was written (gnet has no "drained" event).
const closeWriteRetry = 2 * time.Millisecond

// localCloseWrite shuts down the write side of a gnet connection once its
// outbound buffer is empty.
func (c *Conn) localCloseWrite() error {
	gc := c.gc
	if gc.OutboundBuffered() == 0 {
		return unix.Shutdown(gc.Fd(), unix.SHUT_WR)
	}
	c.rt.shard.afterFunc(closeWriteRetry, func() {
		if c.gc == gc && !c.closing && !c.closed {
			_ = c.localCloseWrite()
		}
	})
	return nil
}

// localClose closes a gnet connection once its outbound buffer is sent,
// or at deadline: gnet's own close writes what the socket takes at once
// and drops the rest, which would lose the end of a large reply.
func (c *Conn) localClose(deadline time.Time) error {
	gc := c.gc
	if gc.OutboundBuffered() == 0 || time.Now().After(deadline) {
		return gc.Close()
	}
	c.rt.shard.afterFunc(closeWriteRetry, func() {
		if c.gc == gc && !c.closed {
			_ = c.localClose(deadline)
		}
	})
	return nil
}
