package builtin

import "github.com/subordinate/subordinate/server"

// Echo makes the echo handler: every byte a client sends after its
// preamble comes back as it was received. When the client shuts down its
// write side, the connection closes once the echo is sent.
func Echo(*server.Shard) (server.Handler, error) { return echo{}, nil }

type echo struct{ server.BaseHandler }

func (echo) OnData(c *server.Conn) {
	b, _ := c.Next(-1)
	_, _ = c.Write(b)
}
