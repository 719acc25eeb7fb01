package main

// Tests of one wschat server in this process, dialled directly.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// deadline only bounds a failure: nothing here is timed.
const deadline = 60 * time.Second

func startLocal(t *testing.T, name string) string {
	t.Helper()
	s := httptest.NewServer(newMux(newHub(name), slog.New(slog.DiscardHandler)))
	t.Cleanup(s.Close)
	return s.URL
}

// TestRooms: a welcome names the server and counts the room, the others
// are told of each join and leave, and a line reaches its room only.
func TestRooms(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	base := startLocal(t, "t0")
	rooms := make(map[string][]*chatClient)
	seen := make(map[string]bool)
	for _, room := range []string{"lobby", "tea room", "café", "lobby2"} {
		for i := 0; i < 3; i++ {
			c := dial(ctx, t, base, room)
			if w := c.welcome; w.Server != "t0" || w.Members != i+1 || seen[w.From] {
				t.Fatalf("room %q, client %d: welcome %+v", room, i, w)
			}
			seen[c.welcome.From] = true
			for _, o := range rooms[room] {
				if m := o.next(ctx); m.Type != "join" || m.From != c.welcome.From || m.Members != i+1 {
					t.Fatalf("room %q: %s was told %+v of %s's join", room, o.welcome.From, m, c.welcome.From)
				}
			}
			rooms[room] = append(rooms[room], c)
		}
	}
	exchange(ctx, t, rooms)

	cs := rooms["lobby"]
	if err := cs[0].conn.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	for _, o := range cs[1:] {
		if m := o.next(ctx); m.Type != "leave" || m.From != cs[0].welcome.From || m.Members != 2 {
			t.Fatalf("%s was told %+v of %s's leave", o.welcome.From, m, cs[0].welcome.From)
		}
	}
	delete(rooms, "lobby")
	rooms["lobby"] = cs[1:]
	exchange(ctx, t, rooms)
}

// TestTooLong: a message over maxText closes that client's connection
// with 1009 and no one else's.
func TestTooLong(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	base := startLocal(t, "t0")
	a, b := dial(ctx, t, base, "r"), dial(ctx, t, base, "r")
	a.next(ctx) // b's join
	b.say(ctx, strings.Repeat("x", maxText+1))
	_, _, err := b.conn.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
		t.Fatalf("after a long message: %v (status %v), want status %v", err, got, websocket.StatusMessageTooBig)
	}
	if m := a.next(ctx); m.Type != "leave" || m.From != b.welcome.From {
		t.Fatalf("a got %+v, want b's leave", m)
	}
	a.say(ctx, "still here")
	if m := a.nextChat(ctx); m.Text != "still here" {
		t.Fatalf("a got %+v", m)
	}
}

// TestSlowClient: a client whose queue is full is dropped from its room
// (its queue closed, once) and does not hold up the others.
func TestSlowClient(t *testing.T) {
	h := newHub("t0")
	fast, slow := h.join("r"), h.join("r")
	<-fast.send // welcome
	<-fast.send // slow's join
	for i := 0; i < 2*queueLen; i++ {
		h.broadcast("r", Message{Type: "message", Text: fmt.Sprint(i)})
		if m := <-fast.send; m.Text != fmt.Sprint(i) {
			t.Fatalf("fast got %+v, want line %d", m, i)
		}
	}
	n := 0
	for range slow.send {
		n++
	}
	if n != queueLen || !slow.dropped.Load() || fast.dropped.Load() {
		t.Fatalf("slow had %d queued (want %d), dropped %v; fast dropped %v", n, queueLen, slow.dropped.Load(), fast.dropped.Load())
	}
	h.leave(slow) // already gone: no second close, no leave message
	h.leave(fast)
	if len(h.rooms) != 0 {
		t.Fatalf("rooms left: %v", h.rooms)
	}
	if _, ok := <-fast.send; ok {
		t.Fatal("fast was told something after slow's drop")
	}
}

// TestPage: the room's page, the health check, and nothing else.
func TestPage(t *testing.T) {
	base := startLocal(t, "t0")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path, status, name, body string
	}{
		{"/rooms/tea%20room/", "200 OK", "t0", "<title>tea room · wschat</title>"},
		{"/rooms/%3Cb%3E/", "200 OK", "t0", "<h1>Room &lt;b&gt;</h1>"},
		{"/rooms/lobby", "307 Temporary Redirect", "", ""},
		{"/rooms/lobby/other", "404 Not Found", "", ""},
		{"/healthz", "200 OK", "", "ok t0\n"},
	} {
		res, err := noRedirect.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != tc.status || res.Header.Get("X-Wschat-Name") != tc.name || !strings.Contains(string(body), tc.body) {
			t.Errorf("GET %s: %s, X-Wschat-Name %q, body:\n%s", tc.path, res.Status, res.Header.Get("X-Wschat-Name"), body)
		}
	}
	// A WebSocket from a page of another site is refused.
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	_, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/rooms/r/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"http://evil.example"}},
	})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin dial: %v, %v", res, err)
	}
}
