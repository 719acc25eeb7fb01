// Command gnetecho is the "raw gnet" row of BENCHMARKS.md: a gnet v2 echo
// server with exactly one event loop, serving echo after the same line
// preamble as Subordinate. It is the limit a single Subordinate shard can
// approach: the same event loop with nothing on top.
//
//	gnetecho -addr 127.0.0.1:7000 [-maxkey 1024] [-keylog FILE]
//
// A connection first sends its key terminated by '\n' (a '\r' before the
// '\n' is dropped); every byte after that, including bytes that arrived in
// the same read as the key, is echoed back unchanged. A key longer than
// -maxkey gets "-ERR key too long\n" and the connection is closed.
//
// With -keylog, the key of every connection is appended to FILE before the
// first byte is echoed, so a client that got an echo back knows the line is
// written. The comparison script uses it to check that HAProxy sends each
// key to one backend.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/panjf2000/gnet/v2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "listen address `host:port`")
	maxKey := flag.Int("maxkey", 1024, "longest accepted key in bytes")
	keyLog := flag.String("keylog", "", "append the key of each connection to `file`")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s := &server{maxKey: *maxKey, log: log}
	if *keyLog != "" {
		f, err := os.OpenFile(*keyLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			log.Error("gnetecho: open key log", "err", err)
			os.Exit(1)
		}
		s.keyLog = f
	}
	err := gnet.Run(s, "tcp://"+*addr,
		gnet.WithMulticore(false),
		gnet.WithNumEventLoop(1),
		gnet.WithReusePort(false),
		gnet.WithLogger(slogAdapter{log}),
	)
	if err != nil {
		log.Error("gnetecho: run", "err", err)
		os.Exit(1)
	}
}

// server is the gnet event handler. It runs on the single loop.
type server struct {
	gnet.BuiltinEventEngine
	maxKey int
	log    *slog.Logger
	keyLog *os.File
	mu     sync.Mutex // keyLog writes; there is one loop, but stay safe
}

// conn is the per-connection state: whether the preamble has been read.
type conn struct{ started bool }

func (s *server) OnBoot(e gnet.Engine) gnet.Action {
	s.log.Info("gnetecho: listening", "loops", 1)
	return gnet.None
}

func (s *server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(&conn{})
	return nil, gnet.None
}

func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	st := c.Context().(*conn)
	if !st.started {
		n := c.InboundBuffered()
		buf, _ := c.Peek(n)
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			if len(buf) > s.maxKey {
				_, _ = c.Write([]byte("-ERR key too long\n"))
				return gnet.Close
			}
			return gnet.None // wait for the rest of the key
		}
		key := buf[:i]
		if len(key) > 0 && key[len(key)-1] == '\r' {
			key = key[:len(key)-1]
		}
		if len(key) > s.maxKey {
			_, _ = c.Write([]byte("-ERR key too long\n"))
			return gnet.Close
		}
		if s.keyLog != nil {
			s.logKey(key)
		}
		_, _ = c.Discard(i + 1) // i+1 >= 1: Discard(0) would drop everything
		st.started = true
	}
	if c.InboundBuffered() == 0 {
		return gnet.None
	}
	buf, err := c.Next(-1)
	if err != nil {
		return gnet.Close
	}
	if _, err := c.Write(buf); err != nil {
		return gnet.Close
	}
	return gnet.None
}

func (s *server) logKey(key []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := make([]byte, 0, len(key)+1)
	line = append(append(line, key...), '\n')
	if _, err := s.keyLog.Write(line); err != nil {
		s.log.Error("gnetecho: key log", "err", err)
	}
}

// slogAdapter routes gnet's logging to slog on stderr (gnet logs to stdout
// by default).
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debugf(f string, v ...any) { a.l.Debug(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Infof(f string, v ...any)  { a.l.Info(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Warnf(f string, v ...any)  { a.l.Warn(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Errorf(f string, v ...any) { a.l.Error(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Fatalf(f string, v ...any) {
	a.l.Error(fmt.Sprintf(f, v...))
	os.Exit(1)
}
