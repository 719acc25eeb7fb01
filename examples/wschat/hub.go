package main

import (
	"strconv"
	"sync"
	"sync/atomic"
)

// queueLen bounds the messages waiting for one client: a client that
// falls this far behind is dropped rather than slowing its room.
const queueLen = 64

// client is one WebSocket in a room: what the hub has queued for it.
type client struct {
	id      string
	room    string
	send    chan Message // closed by the hub when the client leaves or is dropped
	dropped atomic.Bool  // its queue overflowed
}

// hub holds the rooms of this process: every client of a room is here,
// since Subordinate sends the whole room to one process.
type hub struct {
	name  string
	conns sync.WaitGroup // every WebSocket handler still running

	mu     sync.Mutex
	rooms  map[string]map[*client]struct{}
	nextID int
}

func newHub(name string) *hub {
	return &hub{name: name, rooms: make(map[string]map[*client]struct{})}
}

// join adds a new client to room, queues its welcome and tells the others.
func (h *hub) join(room string) *client {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	c := &client{id: "guest-" + strconv.Itoa(h.nextID), room: room, send: make(chan Message, queueLen)}
	members := h.rooms[room]
	if members == nil {
		members = make(map[*client]struct{})
		h.rooms[room] = members
	}
	members[c] = struct{}{}
	c.send <- Message{Type: "welcome", Room: room, Server: h.name, Members: len(members), From: c.id}
	h.broadcastLocked(room, Message{Type: "join", From: c.id, Members: len(members)}, c)
	return c
}

// leave removes c from its room, if it is still there, and tells the others.
func (h *hub) leave(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.removeLocked(c) {
		h.broadcastLocked(c.room, Message{Type: "leave", From: c.id, Members: len(h.rooms[c.room])}, nil)
	}
}

// broadcast queues m for everyone in room.
func (h *hub) broadcast(room string, m Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broadcastLocked(room, m, nil)
}

// broadcastLocked queues m for everyone in room but skip, dropping any
// client whose queue is full.
func (h *hub) broadcastLocked(room string, m Message, skip *client) {
	m.Room, m.Server = room, h.name
	for c := range h.rooms[room] {
		if c == skip {
			continue
		}
		select {
		case c.send <- m:
		default:
			c.dropped.Store(true)
			h.removeLocked(c)
		}
	}
}

// removeLocked takes c out of its room and closes its queue; it reports
// whether c was still there.
func (h *hub) removeLocked(c *client) bool {
	members := h.rooms[c.room]
	if _, ok := members[c]; !ok {
		return false
	}
	delete(members, c)
	if len(members) == 0 {
		delete(h.rooms, c.room)
	}
	close(c.send)
	return true
}
