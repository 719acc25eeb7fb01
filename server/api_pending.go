package server

// This file gives Conn and Shard, which handler.go refers to, the least
// form that lets the process model build and be tested on its own. The
// shard runtime of issue 4 defines them for real (server/conn*.go,
// server/shard*.go); the branch that brings them deletes this file.

// Conn is a client connection as a Handler sees it. See the shard runtime.
type Conn struct {
	buffered int
	closed   bool
}

// Buffered returns the number of bytes buffered for reading.
func (c *Conn) Buffered() int { return c.buffered }

// Discard drops up to n buffered bytes.
func (c *Conn) Discard(n int) (int, error) {
	if n > c.buffered {
		n = c.buffered
	}
	c.buffered -= n
	return n, nil
}

// Close closes the connection.
func (c *Conn) Close() error {
	c.closed = true
	return nil
}

// Shard is the shard a handler serves. See the shard runtime.
type Shard struct {
	index, count int
}

// Index returns the shard's index.
func (s *Shard) Index() int { return s.index }

// Count returns the number of shards.
func (s *Shard) Count() int { return s.count }
