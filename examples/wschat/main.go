// Command wschat is a small WebSocket chat server: one upstream process of
// the example in README.md, where Subordinate sends every browser of a
// room to the same wschat process.
//
// Run one process per shard, then Subordinate in front of them:
//
//	wschat -listen 127.0.0.1:9000 -name up0 &
//	wschat -listen 127.0.0.1:9001 -name up1 &
//	wschat -listen 127.0.0.1:9002 -name up2 &
//	subordinate serve --workers 3 --listen tcp://127.0.0.1:8080 \
//	    --key-from http-path:2 --handler proxy --upstream 'tcp://127.0.0.1:{9000+shard}'
//
// and open http://127.0.0.1:8080/rooms/lobby/ in two browser tabs.
//
// It serves:
//
//	GET /rooms/{room}/     a page that joins the room and shows its messages
//	                       (header X-Wschat-Name: the process that served it)
//	GET /rooms/{room}/ws   the room's WebSocket
//	GET /healthz           "ok NAME"
//
// On the WebSocket the server sends JSON messages: first a welcome naming
// the process (-name) and how many are in the room, then every message
// sent by anyone in the room. A client sends plain text.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// Message is what the server sends on a room's WebSocket.
type Message struct {
	Type    string `json:"type"` // welcome, join, leave or message
	Room    string `json:"room"`
	Server  string `json:"server"`            // the -name of this process
	Members int    `json:"members,omitempty"` // people in the room (welcome, join, leave)
	From    string `json:"from,omitempty"`    // who joined, left or wrote
	Text    string `json:"text,omitempty"`
}

// maxText bounds what a client may send in one message.
const maxText = 4096

//go:embed room.html
var roomHTML string

var roomPage = template.Must(template.New("room").Parse(roomHTML))

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "HOST:PORT to serve on")
	name := flag.String("name", "up0", "name of this process, told to every client that joins")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("name", *name)
	if err := run(*listen, *name, log); err != nil {
		log.Error("wschat", "err", err)
		os.Exit(1)
	}
}

// run serves until SIGTERM or SIGINT, then closes every WebSocket with
// 1001 (going away) and returns.
func run(listen, name string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	h := newHub(name)
	srv := &http.Server{
		Handler:           newMux(h, log),
		ReadHeaderTimeout: 10 * time.Second,
		// Every request's context ends at the signal, which tells the
		// WebSockets (Shutdown neither closes nor waits for them) to close.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("wschat listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", listen, err)
	case <-ctx.Done():
	}
	stop() // a second signal kills at once
	log.Info("wschat shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", listen, err)
	}
	h.conns.Wait() // each WebSocket says goodbye (bounded by Close's own 5 s)
	return nil
}

// newMux routes the page, the WebSocket and the health check.
func newMux(h *hub, log *slog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s\n", h.name)
	})
	mux.HandleFunc("GET /rooms/{room}/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Wschat-Name", h.name) // which upstream served the page
		if err := roomPage.Execute(w, r.PathValue("room")); err != nil {
			log.Warn("room page", "err", err)
		}
	})
	mux.HandleFunc("GET /rooms/{room}/ws", func(w http.ResponseWriter, r *http.Request) {
		serveWS(w, r, h, log)
	})
	return mux
}

// serveWS runs one client: it joins the room, relays what the client
// writes to everyone in it, and leaves when the connection ends.
func serveWS(w http.ResponseWriter, r *http.Request, h *hub, log *slog.Logger) {
	h.conns.Add(1) // before Accept hijacks the connection: before Shutdown returns
	defer h.conns.Done()
	room := r.PathValue("room")
	// Accept checks that the page's Origin is this host, as a browser
	// reached it: Subordinate's proxy relays the request unchanged.
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		log.Info("websocket refused", "room", room, "err", err)
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(maxText)
	stop := context.AfterFunc(r.Context(), func() {
		conn.Close(websocket.StatusGoingAway, "server shutting down")
	})
	defer stop()

	c := h.join(room)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		writeLoop(conn, c)
	}()
	for {
		// No deadline: a chat client may be quiet for hours.
		typ, text, err := conn.Read(context.Background())
		if err != nil {
			break // closed by the client, by the writer or at shutdown
		}
		if typ == websocket.MessageText {
			h.broadcast(room, Message{Type: "message", From: c.id, Text: string(text)})
		}
	}
	h.leave(c) // ends the writer
	<-writerDone
	conn.Close(websocket.StatusNormalClosure, "")
}

// writeLoop sends the client's queue until the hub closes it; a client
// too slow to keep up is dropped.
func writeLoop(conn *websocket.Conn, c *client) {
	for m := range c.send {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := wsjson.Write(ctx, conn, m)
		cancel()
		if err != nil {
			conn.CloseNow()
			return
		}
	}
	if c.dropped.Load() {
		conn.Close(websocket.StatusPolicyViolation, "too slow to keep up with the room")
	}
}
