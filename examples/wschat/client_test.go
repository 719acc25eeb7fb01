package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// chatClient is a real WebSocket client in a room, welcomed.
type chatClient struct {
	t       *testing.T
	conn    *websocket.Conn
	room    string
	welcome Message
}

// dial joins room at the server base (http://HOST:PORT) as a browser on
// its page would, Origin included, and reads the welcome.
func dial(ctx context.Context, t *testing.T, base, room string) *chatClient {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/rooms/" + url.PathEscape(room) + "/ws"
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {base}},
	})
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	c := &chatClient{t: t, conn: conn, room: room}
	c.welcome = c.next(ctx)
	if c.welcome.Type != "welcome" || c.welcome.Room != room || c.welcome.Server == "" || c.welcome.From == "" {
		t.Fatalf("room %q: first message %+v, want a welcome to the room", room, c.welcome)
	}
	return c
}

// next reads the next message; the deadline of ctx only bounds a failure.
func (c *chatClient) next(ctx context.Context) Message {
	c.t.Helper()
	var m Message
	if err := wsjson.Read(ctx, c.conn, &m); err != nil {
		c.t.Fatalf("room %q, client %s: no message: %v", c.room, c.welcome.From, err)
	}
	return m
}

// nextChat reads up to the next message someone wrote, skipping joins
// and leaves; it fails the test on a message of another room or server.
func (c *chatClient) nextChat(ctx context.Context) Message {
	c.t.Helper()
	for {
		m := c.next(ctx)
		if m.Room != c.room || m.Server != c.welcome.Server {
			c.t.Fatalf("room %q on %s, client %s: got %+v", c.room, c.welcome.Server, c.welcome.From, m)
		}
		if m.Type == "message" {
			return m
		}
	}
}

func (c *chatClient) say(ctx context.Context, text string) {
	c.t.Helper()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		c.t.Fatalf("room %q, client %s: write: %v", c.room, c.welcome.From, err)
	}
}

// exchange has every client say one line and checks that each line
// reaches every client of its room and no client of another: once every
// client has had all its room's lines, one client per room says a last
// line, and no client may get anything else before it. (A room's
// messages pass one process's hub in order, so a line leaked from another
// room on the same process would come before that last one.)
func exchange(ctx context.Context, t *testing.T, rooms map[string][]*chatClient) {
	t.Helper()
	for room, cs := range rooms {
		for i, c := range cs {
			c.say(ctx, fmt.Sprintf("%s/%d", room, i))
		}
	}
	for room, cs := range rooms {
		for _, c := range cs {
			got := make(map[string]bool)
			for len(got) < len(cs) {
				m := c.nextChat(ctx)
				if !strings.HasPrefix(m.Text, room+"/") || got[m.Text] {
					t.Fatalf("room %q, client %s: got %+v after %v", room, c.welcome.From, m, got)
				}
				got[m.Text] = true
			}
		}
	}
	for room, cs := range rooms {
		cs[0].say(ctx, room+"/last")
	}
	for room, cs := range rooms {
		for _, c := range cs {
			if m := c.nextChat(ctx); m.Text != room+"/last" || m.From != cs[0].welcome.From {
				t.Fatalf("room %q, client %s: got %+v, want the last line from %s", room, c.welcome.From, m, cs[0].welcome.From)
			}
		}
	}
}
