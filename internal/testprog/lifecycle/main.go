// Command lifecycle is a test program: a Subordinate server whose handler
// counts the OnOpen and OnClose calls it gets, per process and per kind of
// connection, so that a test can check the Handler contract (every OnOpen
// gets exactly one OnClose) on every path, shutdown included.
//
// After its key line a connection gets one line,
//
//	shard=<owner> pid=<pid> via=<accepting shard> kinds=<k1,k2,...>
//
// then its bytes are echoed. A key that starts with "hijack-" is hijacked
// in OnOpen and served the same way on a goroutine, which closes the
// net.Conn at EOF.
//
// When server.Serve returns in a worker, the worker logs one JSON line
// to stderr, with the same logger as the server's:
//
//	{"msg":"lifecycle totals","shard":N,"opens":X,"closes":Y,
//	 "local_opens":...,"local_closes":...,"forwarded_opens":...,...,
//	 "panic_closes":P,"double_closes":0,"orphan_closes":0}
//
// A key that starts with "panic-" gets its greeting, then its handler
// panics in OnData: the runtime closes that connection (and counts an
// OnClose with server.ErrHandlerPanic in "panic_closes"), or, with
// --crash-on-panic, the worker dies and the master restarts it.
//
// A key "hog-<n>-..." makes OnOpen open n descriptors (of /dev/null),
// closed in OnClose: a handler that uses descriptors of its own, for the
// test of the descriptor guard.
//
// The kinds overlap: local (accepted by its owner) or forwarded (accepted
// by another worker); relayed (forwarded with its bytes copied over the
// mesh: TLS in every mode, plain in --forward relay); tls; hijacked.
// Conn.Relayed tells a relayed connection from a handed-off one.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/subordinate/subordinate/server"
)

// The kinds of connection counted.
const (
	kindLocal = iota
	kindForwarded
	kindRelayed
	kindTLS
	kindHijacked
	nKinds
)

var kindNames = [nKinds]string{"local", "forwarded", "relayed", "tls", "hijacked"}

// tally is what one process counted; the handler runs on the loop, but
// the totals are read after Serve returns, and a hijacked connection is
// served on a goroutine: atomics keep it simple.
type tally struct {
	opens, closes         atomic.Int64
	kindOpens, kindCloses [nKinds]atomic.Int64
	panicCloses           atomic.Int64 // OnClose with server.ErrHandlerPanic
	doubleCloses          atomic.Int64 // OnClose for a Conn already closed
	orphanCloses          atomic.Int64 // OnClose for a Conn never opened
}

var (
	counts tally
	shard  atomic.Int64 // this worker's shard, once the factory ran
	mode   string       // --forward
)

// state is a Conn's context: the kinds it was counted as at OnOpen.
type state struct {
	kinds  []int
	closed atomic.Bool
	files  []*os.File // a hog's descriptors
}

type handler struct{ s *server.Shard }

func kindsOf(c *server.Conn) []int {
	forwarded := c.Forwarded() || c.AcceptedBy() != c.Shard().Index()
	tls := c.TLS() != nil
	var ks []int
	if forwarded {
		ks = append(ks, kindForwarded)
		if c.Relayed() {
			ks = append(ks, kindRelayed)
		}
	} else {
		ks = append(ks, kindLocal)
	}
	if tls {
		ks = append(ks, kindTLS)
	}
	if strings.HasPrefix(string(c.Key()), "hijack-") {
		ks = append(ks, kindHijacked)
	}
	return ks
}

func (h *handler) OnOpen(c *server.Conn) {
	st := &state{kinds: kindsOf(c)}
	c.SetContext(st)
	if rest, ok := strings.CutPrefix(string(c.Key()), "hog-"); ok {
		n, _ := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		for range n {
			f, err := os.Open(os.DevNull)
			if err != nil {
				break
			}
			st.files = append(st.files, f)
		}
	}
	counts.opens.Add(1)
	var names []string
	for _, k := range st.kinds {
		counts.kindOpens[k].Add(1)
		names = append(names, kindNames[k])
	}
	greeting := fmt.Sprintf("shard=%d pid=%d via=%d kinds=%s\n", h.s.Index(), os.Getpid(), c.AcceptedBy(), strings.Join(names, ","))
	if st.kinds[len(st.kinds)-1] != kindHijacked {
		_, _ = c.Write([]byte(greeting))
		return
	}
	nc, err := c.Hijack()
	if err != nil {
		_, _ = c.Write([]byte("-ERR hijack: " + err.Error() + "\n"))
		_ = c.Close()
		return
	}
	go serveHijacked(nc, greeting)
}

// serveHijacked echoes until EOF (or an error, such as the runtime
// closing the connection at shutdown), then closes.
func serveHijacked(nc net.Conn, greeting string) {
	defer nc.Close()
	if _, err := io.WriteString(nc, greeting); err != nil {
		return
	}
	buf := make([]byte, 16<<10)
	for {
		n, err := nc.Read(buf)
		if n > 0 {
			if _, werr := nc.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (h *handler) OnData(c *server.Conn) {
	if strings.HasPrefix(string(c.Key()), "panic-") {
		panic("lifecycle: panic for key " + string(c.Key()))
	}
	b, _ := c.Next(-1)
	_, _ = c.Write(b)
}

func (h *handler) OnEOF(c *server.Conn) { _ = c.Close() }

func (h *handler) OnClose(c *server.Conn, err error) {
	if errors.Is(err, server.ErrHandlerPanic) {
		counts.panicCloses.Add(1)
	}
	st, ok := c.Context().(*state)
	if !ok {
		counts.orphanCloses.Add(1)
		return
	}
	if st.closed.Swap(true) {
		counts.doubleCloses.Add(1)
		return
	}
	for _, f := range st.files {
		f.Close()
	}
	counts.closes.Add(1)
	for _, k := range st.kinds {
		counts.kindCloses[k].Add(1)
	}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	cfg := server.DefaultConfig()
	var listen, certs, keys listFlag
	flag.Var(&listen, "listen", "address to serve on (repeatable)")
	flag.Var(&certs, "cert", "PEM certificate for tls:// listeners (repeatable)")
	flag.Var(&keys, "key", "PEM key of the --cert at the same position (repeatable)")
	flag.IntVar(&cfg.Workers, "workers", cfg.Workers, "worker processes (shards)")
	flag.StringVar(&cfg.Forward, "forward", cfg.Forward, "handoff or relay")
	flag.BoolVar(&cfg.CrashOnPanic, "crash-on-panic", cfg.CrashOnPanic, "let a handler panic crash the worker")
	flag.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "most connections a worker holds (0: derived from the descriptor limit)")
	flag.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "how long connections may finish after SIGTERM")
	flag.Parse()
	if len(listen) > 0 {
		cfg.Listen = listen
	}
	for i := range certs {
		if i < len(keys) {
			cfg.TLS.Certs = append(cfg.TLS.Certs, server.CertFile{Cert: certs[i], Key: keys[i]})
		}
	}
	mode = cfg.Forward
	log := slog.New(server.NewJSONLogHandler(os.Stderr, nil))
	cfg.Logger = log
	shard.Store(-1)
	worker := server.IsWorker() // Serve clears what tells
	err := server.Serve(cfg, func(s *server.Shard) (server.Handler, error) {
		shard.Store(int64(s.Index()))
		return &handler{s: s}, nil
	})
	if worker {
		attrs := []any{"shard", shard.Load(), "opens", counts.opens.Load(), "closes", counts.closes.Load()}
		for k, name := range kindNames {
			attrs = append(attrs, name+"_opens", counts.kindOpens[k].Load(), name+"_closes", counts.kindCloses[k].Load())
		}
		attrs = append(attrs, "panic_closes", counts.panicCloses.Load(), "double_closes", counts.doubleCloses.Load(), "orphan_closes", counts.orphanCloses.Load())
		if err != nil {
			attrs = append(attrs, "err", err.Error())
		}
		log.Info("lifecycle totals", attrs...)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "lifecycle:", err)
		os.Exit(1)
	}
}
