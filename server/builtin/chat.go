package builtin

import (
	"bytes"
	"fmt"

	"github.com/subordinate/subordinate/server"
)

// MaxChatLine is the longest line, newline included, a chat member may
// send; a longer one gets an -ERR line and the member is disconnected.
const MaxChatLine = 64 << 10

// Chat makes the chat handler. A connection's key is the name of a room.
// On joining, a member receives one line:
//
//	joined room="<key>" shard=<index> members=<n>
//
// Every complete line a member sends afterwards is delivered byte for
// byte to every other member of the room, in the order sent, and not back
// to the sender. The rooms of a shard live on its event loop: no locks.
func Chat(s *server.Shard) (server.Handler, error) {
	return &chat{shard: s, rooms: make(map[string]map[*server.Conn]struct{})}, nil
}

type chat struct {
	server.BaseHandler
	shard *server.Shard
	rooms map[string]map[*server.Conn]struct{}
}

func (h *chat) OnOpen(c *server.Conn) {
	room := string(c.Key())
	members := h.rooms[room]
	if members == nil {
		members = make(map[*server.Conn]struct{})
		h.rooms[room] = members
	}
	members[c] = struct{}{}
	_, _ = fmt.Fprintf(c, "joined room=%q shard=%d members=%d\n", room, h.shard.Index(), len(members))
}

func (h *chat) OnData(c *server.Conn) {
	members := h.rooms[string(c.Key())]
	for {
		buf, _ := c.Peek(-1)
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			if len(buf) >= MaxChatLine {
				_, _ = c.Write([]byte("-ERR line too long\n"))
				_ = c.Close()
			}
			return
		}
		line := buf[:i+1]
		for m := range members {
			if m != c {
				_, _ = m.Write(line)
			}
		}
		_, _ = c.Discard(i + 1)
	}
}

func (h *chat) OnClose(c *server.Conn, _ error) {
	room := string(c.Key())
	members := h.rooms[room]
	delete(members, c)
	if len(members) == 0 {
		delete(h.rooms, room)
	}
}
