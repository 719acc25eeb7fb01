package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/subordinate/subordinate/internal/keysrc"
	"github.com/subordinate/subordinate/server"
	"github.com/subordinate/subordinate/server/builtin"
)

func init() {
	register("serve", command{summary: "run the master and its workers", run: runServe})
}

// defaultHandler is --handler's default.
const defaultHandler = "chat"

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func runServe(args []string, stdout, stderr io.Writer) int {
	def := server.DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var listen listFlag
	fs.Var(&listen, "listen", "address to accept on: tcp://HOST:PORT (or HOST:PORT), tls://HOST:PORT, or unix:///path with optional ?mode=0660&owner=USER&group=GROUP (repeatable; default "+server.DefaultListen+")")
	workers := fs.Int("workers", def.Workers, "number of worker processes (shards)")
	frame := fs.String("frame", def.Frame, "key framing of --key-from frame: line or binary")
	keyFrom := fs.String("key-from", def.KeyFrom, "where each connection's key comes from: frame (our preamble), sni (TLS server name), client-ip[/N[,M]] (client address or network), http-header:NAME, http-cookie:NAME, http-path:N or http-query:NAME (first HTTP/1.x request); see docs/PROTOCOL.md")
	defaultKey := fs.String("default-key", "", "key of a connection whose --key-from source has none (no SNI, no such header...); empty: refuse it")
	maxHTTPHead := fs.Int("max-http-head", def.MaxHTTPHead, "with an http-* --key-from: largest request head read for the key, in bytes (past it: 431)")
	acceptPP := fs.Bool("accept-proxy-protocol", false, "every connection starts with a PROXY protocol v1 or v2 header from a load balancer in --trusted-proxy; RemoteAddr and client-ip keys use the client it declares")
	var trusted listFlag
	fs.Var(&trusted, "trusted-proxy", "network (CIDR or address; \"unix\" for Unix socket clients) allowed to send PROXY headers (repeatable)")
	forward := fs.String("forward", def.Forward, "how a plain connection reaches its owner: handoff (pass the socket) or relay (copy over the mesh)")
	forwardTLS := fs.String("forward-tls", def.ForwardTLS, "how a TLS connection terminated for another worker reaches it: handoff (its socket, with its TLS 1.3 session; a TLS 1.2 one is spliced), splice (a socketpair both loops serve), relay (over the mesh, in batches) or auto (handoff; a TLS 1.2 one spliced when every worker can have a CPU of its own, relayed otherwise)")
	handler := fs.String("handler", defaultHandler, "handler: "+strings.Join(builtin.Names(), ", "))
	secretFile := fs.String("secret-file", "", "file holding the direct-routing secret (default: a random one)")
	drain := fs.Duration("drain-timeout", def.DrainTimeout, "how long connections may finish after SIGTERM/SIGINT")
	preamble := fs.Duration("preamble-timeout", def.PreambleTimeout, "how long a client has to send its key")
	ownerWait := fs.Duration("owner-wait", def.OwnerWait, "how long a connection waits for a restarting owner")
	maxConns := fs.Int("max-conns", def.MaxConns, "most connections each worker holds open; past it new ones get -ERR server busy (0: derived from the descriptor limit)")
	keepAlive := fs.Duration("keepalive", def.KeepAlive, "TCP keep-alive period of client sockets, to find dead peers (negative: off)")
	idleTimeout := fs.Duration("idle-timeout", def.IdleTimeout, "close a connection after this long without a byte from its client (0: off)")
	maxKey := fs.Int("max-key", def.MaxKey, "longest key, in bytes")
	crashOnPanic := fs.Bool("crash-on-panic", def.CrashOnPanic, "let a panic in the handler crash its worker (restarted by the master) instead of closing that one connection")
	var certs, keys listFlag
	fs.Var(&certs, "cert", "PEM certificate chain for tls:// listeners (repeatable, paired in order with --key; chosen by SNI)")
	fs.Var(&keys, "key", "PEM private key of the --cert at the same position (repeatable)")
	clientCA := fs.String("client-ca", "", "PEM CA file: require and verify client certificates (mutual TLS)")
	alpn := fs.String("alpn", "", "comma-separated ALPN protocols to offer, in order of preference")
	tlsMin := fs.String("tls-min-version", "1.2", "oldest TLS version accepted: 1.2 or 1.3")
	ticketRotation := fs.Duration("tls-ticket-rotation", def.TicketKeyRotation, "how often the master replaces the TLS session ticket key shared by every worker (a ticket resumes for 2 to 3 periods; see docs/TLS.md)")
	upstream := fs.String("upstream", "", "proxy handler: each shard's upstream, e.g. tcp://127.0.0.1:{9000+shard} (or 127.0.0.1:{9000+shard}) or unix:///run/app/{shard}.sock")
	upstreamPP := fs.Bool("upstream-proxy-protocol", false, "proxy handler: start each upstream connection with a PROXY protocol v2 header")
	admin := fs.String("admin", def.Admin, "HOST:PORT of the master's HTTP admin endpoint: /metrics, /healthz, /readyz, /status (off unless given; keep it on loopback or a private address)")
	adminPprof := fs.Bool("admin-pprof", def.AdminPprof, "also serve the master's pprof profiles under /debug/pprof/ on the admin endpoint")
	pidFile := fs.String("pidfile", "", "file the master writes its pid to (removed at exit; rewritten by the new master after a SIGUSR2 upgrade)")
	upgradeTimeout := fs.Duration("upgrade-timeout", def.UpgradeTimeout, "how long a new binary started by SIGUSR2 has to get its workers ready before it is killed and this master serves on")
	nodes := fs.String("nodes", "", "cluster: the node list, node 0 first: HOST:PORT,HOST:PORT,... or a template with {i} and --cluster-size, e.g. sub-{i}.sub.default.svc:7946 (PORT is worker 0's cluster port; see docs/CLUSTER.md)")
	nodesFile := fs.String("nodes-file", "", "cluster: file with one HOST:PORT per line, instead of --nodes")
	clusterSize := fs.Int("cluster-size", 0, "cluster: number of nodes of a --nodes template (with a list: must agree with it)")
	nodeIndex := fs.String("node-index", "", "cluster: this node's index in the list, or from-hostname (the ordinal ending a StatefulSet pod's hostname)")
	clusterListen := fs.String("cluster-listen", "", "cluster: tls://HOST:PORT the other nodes link to; worker w listens on PORT+w")
	clusterCert := fs.String("cluster-cert", "", "cluster: PEM certificate of this node, for the links both ways (it must name the host the other nodes dial)")
	clusterKey := fs.String("cluster-key", "", "cluster: PEM private key of --cluster-cert")
	clusterCA := fs.String("cluster-ca", "", "cluster: PEM CA every node's certificate must chain to (the links are mutual TLS)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: subordinate serve [flags]")
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), "Runs the master, which binds the listeners and supervises one worker process")
		fmt.Fprintln(fs.Output(), "per shard. SIGTERM or SIGINT drains (a second one stops at once), SIGHUP reloads")
		fmt.Fprintln(fs.Output(), "the TLS certificates, SIGUSR2 upgrades to the binary now at this one's path.")
		fmt.Fprintln(fs.Output(), "See docs/PROCESSES.md.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	if code, done := parseFlags("serve", fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "subordinate serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "subordinate serve: %v\n", err)
		return 2
	}
	var factory server.HandlerFactory
	if *handler == "proxy" {
		src, _ := keysrc.Parse(*keyFrom) // checked with the rest of the Config
		factory, err = builtin.Proxy(builtin.ProxyConfig{Upstream: *upstream, ProxyProtocol: *upstreamPP, HTTP: src.HTTP()})
	} else {
		factory, err = builtin.Lookup(*handler)
		if err == nil && *upstream != "" {
			err = fmt.Errorf("--upstream is for --handler proxy")
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "subordinate serve: %v\n", err)
		return 2
	}

	cfg := def
	if len(listen) > 0 {
		cfg.Listen = listen
	}
	cfg.Workers = *workers
	cfg.Frame = *frame
	cfg.KeyFrom = *keyFrom
	cfg.DefaultKey = *defaultKey
	cfg.MaxHTTPHead = *maxHTTPHead
	cfg.AcceptProxyProtocol = *acceptPP
	for _, t := range trusted {
		cfg.TrustedProxies = append(cfg.TrustedProxies, strings.Split(t, ",")...)
	}
	cfg.Forward = *forward
	cfg.ForwardTLS = *forwardTLS
	cfg.SecretFile = *secretFile
	cfg.DrainTimeout = *drain
	cfg.PreambleTimeout = *preamble
	cfg.OwnerWait = *ownerWait
	cfg.MaxConns = *maxConns
	cfg.KeepAlive = *keepAlive
	cfg.IdleTimeout = *idleTimeout
	cfg.MaxKey = *maxKey
	cfg.CrashOnPanic = *crashOnPanic
	cfg.Admin, cfg.AdminPprof = *admin, *adminPprof
	cfg.PidFile = *pidFile
	cfg.UpgradeTimeout = *upgradeTimeout
	if len(certs) != len(keys) {
		fmt.Fprintf(stderr, "subordinate serve: %d --cert but %d --key: give them in pairs\n", len(certs), len(keys))
		return 2
	}
	for i := range certs {
		cfg.TLS.Certs = append(cfg.TLS.Certs, server.CertFile{Cert: certs[i], Key: keys[i]})
	}
	cfg.TLS.ClientCA = *clientCA
	if *alpn != "" {
		cfg.TLS.ALPN = strings.Split(*alpn, ",")
	}
	cfg.TLS.MinVersion = *tlsMin
	cfg.TicketKeyRotation = *ticketRotation
	cfg.Cluster = server.ClusterConfig{
		Nodes: *nodes, NodesFile: *nodesFile, Size: *clusterSize, Index: *nodeIndex,
		Listen: *clusterListen, Cert: *clusterCert, Key: *clusterKey, CA: *clusterCA,
	}
	cfg.Logger = logger
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "subordinate serve: %v\n", err)
		return 2
	}
	if err := server.Serve(cfg, factory); err != nil {
		fmt.Fprintf(stderr, "subordinate serve: %v\n", err)
		if errors.Is(err, server.ErrConfig) {
			return 2 // found by the master (a node list, its files): a usage error
		}
		return 1
	}
	return 0
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(server.NewJSONLogHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
