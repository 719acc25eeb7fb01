package main

// End-to-end tests with real processes: wschat upstreams, alone and
// behind "subordinate serve --key-from http-path:2 --handler proxy".

import (
	"context"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/subordinate/subordinate/internal/proctest"
	"github.com/subordinate/subordinate/shard"
)

// soon bounds a wait for a process: it only keeps a failure from hanging.
const soon = 60 * time.Second

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wschat-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var builds sync.Map // package path → func() (string, error)

// binary builds pkg once (with the race detector if this test has it)
// and returns its path.
func binary(t *testing.T, pkg string) string {
	t.Helper()
	f, _ := builds.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		return proctest.Build(pkg, binDir, proctest.RaceEnabled)
	}))
	bin, err := f.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// startUpstreams starts n wschat processes, named up0, up1... on ports
// base, base+1... of 127.0.0.1 (as --upstream 'tcp://127.0.0.1:{BASE+shard}'
// wants them) and waits until each answers its health check. A base with
// a port taken is tried again with another.
func startUpstreams(t *testing.T, n int) (base int, procs []*proctest.Proc) {
	t.Helper()
	bin := binary(t, "github.com/subordinate/subordinate/examples/wschat")
	for attempt := 0; attempt < 20; attempt++ {
		// Below Linux's ephemeral range, where no outgoing connection
		// takes a port between our check and the upstream's bind.
		base = 20000 + rand.IntN(12000)
		if !portsFree(base, n) {
			continue
		}
		procs = procs[:0]
		for i := 0; i < n; i++ {
			addr, name := fmt.Sprintf("127.0.0.1:%d", base+i), fmt.Sprintf("up%d", i)
			p := proctest.Start(t, bin, nil, "-listen", addr, "-name", name)
			procs = append(procs, p)
			if !healthy(t, p, addr, name) {
				break
			}
		}
		if len(procs) == n && !procs[n-1].Exited() {
			return base, procs
		}
		stopAll(t, procs, false) // a port was taken after all
	}
	t.Fatalf("found no %d free ports in a row for the upstreams", n)
	return 0, nil
}

func portsFree(base, n int) bool {
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
		if err != nil {
			return false
		}
		defer l.Close()
	}
	return true
}

// healthy waits until the wschat p answers "ok NAME" on addr, or exits
// (its port was taken: false).
func healthy(t *testing.T, p *proctest.Proc, addr, name string) bool {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	for end := time.Now().Add(soon); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if p.Exited() {
			return false
		}
		res, err := c.Get("http://" + addr + "/healthz")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) == "ok "+name+"\n" {
			return true
		}
	}
	t.Fatalf("wschat %s did not answer on %s within %v\n%s", name, addr, soon, p.Stderr())
	return false
}

// stopAll sends SIGTERM to each process and waits for it; with check, it
// must exit with status 0.
func stopAll(t *testing.T, procs []*proctest.Proc, check bool) {
	t.Helper()
	for _, p := range procs {
		if !p.Exited() {
			p.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		if st := p.WaitExit(soon); check {
			exitedCleanly(t, p, st)
		}
	}
}

func exitedCleanly(t *testing.T, p *proctest.Proc, st *os.ProcessState) {
	t.Helper()
	if st.ExitCode() != 0 {
		t.Errorf("pid %d exited with %v\n%s", p.Pid, st, p.Stderr())
	}
}

// TestProcess: a real wschat process serves a room, and at SIGTERM tells
// its clients it is going away (1001) and exits with status 0.
func TestProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), soon)
	defer cancel()
	base, procs := startUpstreams(t, 1)
	up := fmt.Sprintf("http://127.0.0.1:%d", base)
	a, b := dial(ctx, t, up, "lobby"), dial(ctx, t, up, "lobby")
	if a.welcome.Server != "up0" || b.welcome.Members != 2 {
		t.Fatalf("welcomes %+v, %+v", a.welcome, b.welcome)
	}
	exchange(ctx, t, map[string][]*chatClient{"lobby": {a, b}})
	procs[0].Signal(syscall.SIGTERM)
	for _, c := range []*chatClient{a, b} {
		for {
			_, _, err := c.conn.Read(ctx)
			if err == nil {
				continue // a's leave, for b
			}
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("client %s at SIGTERM: %v, want status %v", c.welcome.From, err, websocket.StatusGoingAway)
			}
			break
		}
	}
	exitedCleanly(t, procs[0], procs[0].WaitExit(soon)) // a second SIGTERM would kill it
}

// TestBehindSubordinate is the example of README.md: three upstreams
// behind subordinate serve --key-from http-path:2 --handler proxy. Every
// WebSocket of a room reaches the upstream of the shard that owns the
// room, lines reach their room only, and the page comes from there too.
func TestBehindSubordinate(t *testing.T) {
	const shards = 3
	sub := binary(t, "github.com/subordinate/subordinate/cmd/subordinate")
	ctx, cancel := context.WithTimeout(context.Background(), 2*soon)
	defer cancel()
	base, ups := startUpstreams(t, shards)
	s := proctest.Start(t, sub, nil, "serve", "--log-format", "json", "--workers", fmt.Sprint(shards),
		"--listen", "tcp://127.0.0.1:0", "--key-from", "http-path:2",
		"--handler", "proxy", "--upstream", fmt.Sprintf("tcp://127.0.0.1:{%d+shard}", base))
	started := s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Msg() == "master started" })
	listen, _ := started["listen"].([]any)
	if len(listen) == 0 {
		t.Fatalf("no listen address in %v", started)
	}
	_, addr, _ := strings.Cut(fmt.Sprint(listen[0]), "://")
	for i := 0; i < shards; i++ {
		s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("worker ready", "shard", i) })
	}
	// Every worker's links to the others, so that no connection waits for
	// one (--owner-wait) on a slow machine.
	for i := 0; i < shards; i++ {
		for j := 0; j < shards; j++ {
			if i != j {
				s.WaitLog(soon, 1, func(l proctest.Line) bool { return l.Is("mesh: link up", "shard", i, "peer", j) })
			}
		}
	}
	front := "http://" + addr

	// Rooms with spaces and accents, and enough of them that every
	// upstream has some.
	names := []string{"lobby", "tea room", "café"}
	owned := make([]int, shards)
	for _, r := range names {
		owned[shard.Owner([]byte(r), shards)]++
	}
	for i := 0; len(names) < 6 || min(owned[0], owned[1], owned[2]) == 0; i++ {
		r := fmt.Sprintf("room-%d", i)
		names = append(names, r)
		owned[shard.Owner([]byte(r), shards)]++
	}
	rooms := make(map[string][]*chatClient)
	for _, room := range names {
		want := fmt.Sprintf("up%d", shard.Owner([]byte(room), shards))
		for i := 0; i < 3; i++ {
			c := dial(ctx, t, front, room)
			if c.welcome.Server != want || c.welcome.Members != i+1 {
				t.Fatalf("room %q, client %d: welcome %+v, want from %s with %d in the room", room, i, c.welcome, want, i+1)
			}
			rooms[room] = append(rooms[room], c)
		}
	}
	exchange(ctx, t, rooms)

	// The page, by net/http: one connection per request, as a connection
	// stays with the shard of its first request.
	web := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: soon}
	for _, room := range names {
		res, err := web.Get(front + "/rooms/" + url.PathEscape(room) + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		want := fmt.Sprintf("up%d", shard.Owner([]byte(room), shards))
		if err != nil || res.StatusCode != http.StatusOK || res.Header.Get("X-Wschat-Name") != want ||
			!strings.Contains(string(body), "<h1>Room "+html.EscapeString(room)+"</h1>") {
			t.Fatalf("page of room %q: %s from %q (want %s), %v:\n%s", room, res.Status, res.Header.Get("X-Wschat-Name"), want, err, body)
		}
	}

	for _, cs := range rooms {
		for _, c := range cs {
			c.conn.Close(websocket.StatusNormalClosure, "")
		}
	}
	stopAll(t, []*proctest.Proc{s}, true)
	stopAll(t, ups, true)
}
