package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"time"
)

// Defaults of Config, as DefaultConfig sets them.
const (
	DefaultListen            = "tcp://127.0.0.1:7000"
	DefaultFrame             = "line"
	DefaultForward           = ForwardHandoff
	DefaultMaxKey            = 1024
	DefaultPreambleTimeout   = 5 * time.Second
	DefaultOwnerWait         = 3 * time.Second
	DefaultDrainTimeout      = 10 * time.Second
	DefaultConnBufferLimit   = 1 << 20
	DefaultMaxRestarts       = 5
	DefaultRestartBackoff    = 100 * time.Millisecond
	DefaultMaxRestartBackoff = 5 * time.Second
	DefaultKeepAlive         = 15 * time.Second
	DefaultUpgradeTimeout    = 30 * time.Second
	DefaultTicketKeyRotation = 12 * time.Hour
	DefaultKeyFrom           = "frame"
	DefaultMaxHTTPHead       = 16 << 10
)

// Ways a worker reaches the owner of a plain connection it accepted, for
// Config.Forward.
const (
	// ForwardHandoff passes the socket itself to the owner (SCM_RIGHTS):
	// from then on the connection is the owner's own, as if it had
	// accepted it.
	ForwardHandoff = "handoff"
	// ForwardRelay keeps the socket in the accepting worker and relays
	// its bytes to the owner over a mesh stream.
	ForwardRelay = "relay"
)

// Ways a worker relays a TLS connection it terminated, for
// Config.ForwardTLS.
const (
	ForwardTLSAuto    = "auto"
	ForwardTLSHandoff = "handoff"
	ForwardTLSSplice  = "splice"
	ForwardTLSRelay   = "relay"
)

// Limits of Config.
const (
	// MaxWorkers bounds Config.Workers: the master makes a socketpair per
	// pair of workers.
	MaxWorkers = 256
	// MaxKeyLimit bounds Config.MaxKey (the binary frame's 2-byte length).
	MaxKeyLimit = 65535
)

// ErrConfig is wrapped by every error of Config.Validate.
var ErrConfig = errors.New("invalid config")

// Config configures a Subordinate server. Start from DefaultConfig: a zero
// field is not replaced by its default, Validate refuses it.
//
// The master sends the Config to each worker over the control channel,
// all fields but Logger (each process builds its own, see Serve) and
// Secret (sent on its own, never logged).
type Config struct {
	// Listen are the addresses to accept on: "tcp://HOST:PORT" (or
	// "HOST:PORT"), "tls://HOST:PORT" or "unix:///path/to/socket" (or
	// "/path/to/socket"), the last with optional socket file options
	// "?mode=0660&owner=USER&group=GROUP" (see ParseListenURL).
	// Default: tcp://127.0.0.1:7000.
	Listen []string `json:"listen"`

	// Workers is the number of worker processes, one shard each.
	// Default: runtime.NumCPU().
	Workers int `json:"workers"`

	// Frame is how a client sends its key at the start of a connection:
	// "line" (the key, then LF) or "binary" (a 2-byte length, then the
	// key). See docs/PROTOCOL.md. Default: "line".
	Frame string `json:"frame"`

	// KeyFrom is where each connection's key comes from (--key-from):
	// "frame" (the preamble, encoded as Frame says), "sni" (the server
	// name of the TLS ClientHello), "client-ip" or "client-ip/N[,M]" (the
	// client's address, or its network), "http-header:NAME",
	// "http-cookie:NAME", "http-path:N" or "http-query:NAME" (from the
	// head of the first HTTP/1.x request). See docs/PROTOCOL.md, section
	// 8. Default: "frame".
	KeyFrom string `json:"key_from"`

	// DefaultKey is the key of a connection whose KeyFrom source has
	// none (no SNI, no such header, a Unix client for client-ip). Empty:
	// such a connection is refused. It does not apply to "frame".
	DefaultKey string `json:"default_key,omitempty"`

	// MaxHTTPHead bounds the head of the first HTTP request with an
	// http-* KeyFrom (request line and headers); past it the client gets
	// 431 (414 for the request line alone). Default: 16 KiB.
	MaxHTTPHead int `json:"max_http_head"`

	// AcceptProxyProtocol makes every connection start with a PROXY
	// protocol header (version 1 or 2), from a load balancer in front:
	// Conn.RemoteAddr and client-ip keys then use the client's address it
	// declares. Connections from outside TrustedProxies, and ones without
	// a valid header, are refused. Default: off.
	AcceptProxyProtocol bool `json:"accept_proxy_protocol,omitempty"`

	// TrustedProxies are the networks (CIDR, or single addresses; "unix"
	// for Unix socket clients) allowed to send PROXY headers. Required
	// with AcceptProxyProtocol.
	TrustedProxies []string `json:"trusted_proxies,omitempty"`

	// Forward is how a worker reaches the owner of a plain (TCP or Unix)
	// connection whose key another shard owns: ForwardHandoff or
	// ForwardRelay. A TLS connection reaches it as ForwardTLS says
	// (in relay mode, always relayed). See
	// docs/MESH.md. Default: "handoff".
	Forward string `json:"forward"`

	// ForwardTLS is how a worker passes a TLS connection it terminated to
	// the owner of its key:
	//
	//   - ForwardTLSHandoff hands the client's socket off with its TLS 1.3
	//     session (traffic keys and sequence numbers): the owner serves
	//     the connection as its own, and the accepting worker is out of
	//     it. A connection that cannot move so (TLS 1.2, more buffered
	//     than a hand-off message holds, the owner's link down) is
	//     spliced.
	//   - ForwardTLSSplice keeps the session here and relays the
	//     plaintext through a socketpair whose ends both loops serve.
	//   - ForwardTLSRelay keeps it here and relays over the mesh, with
	//     goroutines, whose frames go out in batches.
	//   - ForwardTLSAuto, the default, hands off as ForwardTLSHandoff
	//     does; a connection that cannot move is spliced when every
	//     worker can have a CPU of its own (no fewer CPUs in the worker's
	//     affinity than workers), relayed otherwise, where the mesh's
	//     batches save more than the splice's loops (docs/TLS.md).
	//
	// With Forward ForwardRelay it is always the relay. Default: "auto".
	ForwardTLS string `json:"forward_tls,omitempty"`

	// MaxKey is the longest key accepted, in bytes (at most 65535).
	// Default: 1024.
	MaxKey int `json:"max_key"`

	// PreambleTimeout is how long a client has to send its key after it
	// connects. Default: 5s.
	PreambleTimeout time.Duration `json:"preamble_timeout"`

	// OwnerWait is how long a new connection waits for the shard that
	// owns its key while that shard restarts, before it gets an error.
	// Default: 3s.
	OwnerWait time.Duration `json:"owner_wait"`

	// DrainTimeout is how long connections in flight may go on after
	// SIGTERM or SIGINT before the workers close them and exit.
	// Default: 10s.
	DrainTimeout time.Duration `json:"drain_timeout"`

	// PidFile is a file the master writes its process id to (atomically)
	// once its listeners are bound, and removes when it exits if the file
	// still names it. After a binary upgrade (SIGUSR2) the new master
	// writes its own once its workers are ready. Default: "" (none).
	PidFile string `json:"pid_file,omitempty"`

	// UpgradeTimeout bounds a binary upgrade (SIGUSR2): a new master not
	// ready (every worker ready) within it is killed, and the old one
	// serves on. Default: 30s.
	UpgradeTimeout time.Duration `json:"upgrade_timeout"`

	// SecretFile is a file whose content is the secret for direct
	// routing (docs/PROTOCOL.md); one trailing newline is removed. With
	// neither SecretFile nor Secret, the master generates a random
	// 32-byte secret.
	SecretFile string `json:"secret_file,omitempty"`

	// Secret is the secret itself, for programs that embed Subordinate.
	// Set at most one of Secret and SecretFile. It reaches the workers
	// over the control channel only, never argv or the environment.
	Secret []byte `json:"-"`

	// ConnBufferLimit is the number of bytes a connection may have
	// buffered (read and not consumed by the handler, or written and not
	// yet sent) before it is closed with an error. Default: 1 MiB.
	ConnBufferLimit int `json:"conn_buffer_limit"`

	// MaxRestarts is how many times in a row a shard's worker may exit
	// before it became ready (a handler factory that fails, a bad
	// configuration) before the master gives up, stops every worker and
	// Serve returns an error. A worker that became ready and then exits
	// is always restarted, after the back-off: it never makes the master
	// give up. Default: 5.
	MaxRestarts int `json:"max_restarts"`

	// RestartBackoff is the wait before restarting a worker that failed
	// once; it doubles with each failure in a row, up to
	// MaxRestartBackoff. Defaults: 100ms and 5s.
	RestartBackoff    time.Duration `json:"restart_backoff"`
	MaxRestartBackoff time.Duration `json:"max_restart_backoff"`

	// MaxConns is the most client connections a worker holds open: its
	// local Conns (accepted or handed off to it), the connections whose
	// preamble it is reading, and those whose socket it keeps while it
	// relays them to another worker or terminates their TLS (a
	// connection relayed to this worker holds no descriptor here and is
	// counted by the worker that holds its socket). Past it, a new
	// connection gets "-ERR server busy" and is closed before its
	// preamble is read (a connection of a tls:// listener is closed
	// without the line, which it could not read), as is a connection
	// handed off to a worker that is full. 0 derives it, in each worker,
	// from the descriptor limit (see DefaultMaxConns). Default: 0.
	MaxConns int `json:"max_conns"`

	// KeepAlive is the TCP keep-alive period of client sockets: idle
	// time before the first probe and interval between probes (9 probes,
	// as Go's net), so that the connections of dead peers are found and
	// closed. Negative disables keep-alive; a positive value is rounded
	// down to whole seconds (at least 1s). A handed-off socket keeps what
	// the worker that accepted it set. Default: 15s.
	KeepAlive time.Duration `json:"keep_alive"`

	// IdleTimeout closes a connection from which no byte has come for
	// that long; its OnClose gets ErrIdleTimeout. A handler may set its
	// own per connection with Conn.SetIdleTimeout. The check is coarse
	// (a sweep per shard every quarter of the timeout): an idle
	// connection is closed between IdleTimeout and 1.5×IdleTimeout after
	// its last byte. 0 disables it. Default: 0 (off).
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`

	// CrashOnPanic lets a panic in handler code (a Handler method, or a
	// function queued with Shard.Run or Shard.AfterFunc) crash the worker
	// process, and with it every connection of its shard; the master then
	// restarts the worker. By default (false) the runtime recovers the
	// panic, as net/http does: it logs the panic and its stack, closes
	// that one connection (its OnClose gets an error wrapping
	// ErrHandlerPanic) and the shard serves on. Default: false.
	CrashOnPanic bool `json:"crash_on_panic,omitempty"`

	// Admin is the address ("HOST:PORT") of the master's HTTP admin
	// endpoint: /metrics (Prometheus), /healthz, /readyz and /status
	// (docs/METRICS.md). It belongs on a loopback or private address; a
	// non-loopback one is allowed and logged as a warning. Empty: no
	// admin endpoint. Default: "" (off).
	Admin string `json:"admin,omitempty"`

	// AdminPprof serves the master's net/http/pprof profiles under
	// /debug/pprof/ on the admin endpoint. Default: false.
	AdminPprof bool `json:"admin_pprof,omitempty"`

	// TLS configures the tls:// listeners: certificates, client
	// certificate verification, ALPN. See TLSConfig.
	TLS TLSConfig `json:"tls"`

	// TicketKeyRotation is how often the master replaces the TLS session
	// ticket key that encrypts new tickets. Every worker has the same
	// keys (sent over the control channel), so a client resumes its
	// session on whichever worker accepts it; a key goes on decrypting
	// for two more rotations, so a ticket resumes for 2 to 3 periods
	// (and at most 7 days, crypto/tls's limit). See docs/TLS.md,
	// "Session resumption". Default: 12h.
	TicketKeyRotation time.Duration `json:"ticket_key_rotation"`

	// Cluster makes the server one node of a cluster: every key is owned
	// by one worker of one node, and a connection accepted by any node
	// reaches it (docs/CLUSTER.md). Default: zero, one machine.
	Cluster ClusterConfig `json:"cluster"`

	// Logger receives the logs of the process (master or worker), which
	// add "pid" and, in a worker, "shard". Default: slog.Default().
	Logger *slog.Logger `json:"-"`
}

// DefaultConfig returns a Config with every default set.
func DefaultConfig() Config {
	return Config{
		Listen:            []string{DefaultListen},
		Workers:           runtime.NumCPU(),
		Frame:             DefaultFrame,
		KeyFrom:           DefaultKeyFrom,
		MaxHTTPHead:       DefaultMaxHTTPHead,
		Forward:           DefaultForward,
		ForwardTLS:        ForwardTLSAuto,
		MaxKey:            DefaultMaxKey,
		PreambleTimeout:   DefaultPreambleTimeout,
		OwnerWait:         DefaultOwnerWait,
		DrainTimeout:      DefaultDrainTimeout,
		ConnBufferLimit:   DefaultConnBufferLimit,
		MaxRestarts:       DefaultMaxRestarts,
		RestartBackoff:    DefaultRestartBackoff,
		MaxRestartBackoff: DefaultMaxRestartBackoff,
		KeepAlive:         DefaultKeepAlive,
		UpgradeTimeout:    DefaultUpgradeTimeout,
		TicketKeyRotation: DefaultTicketKeyRotation,
	}
}

// Validate reports the first invalid field, wrapping ErrConfig.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if len(c.Listen) == 0 {
		return bad("no listen address")
	}
	seen := map[string]bool{}
	anyTLS := false
	for _, l := range c.Listen {
		a, err := ParseListenURL(l)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		anyTLS = anyTLS || a.TLS
		if seen[a.String()] {
			return bad("listen address %s given twice", l)
		}
		seen[a.String()] = true
	}
	switch {
	case c.Workers < 1 || c.Workers > MaxWorkers:
		return bad("workers %d: want 1 to %d", c.Workers, MaxWorkers)
	case c.Frame != "line" && c.Frame != "binary":
		return bad("frame %q: want line or binary", c.Frame)
	case c.Forward != ForwardHandoff && c.Forward != ForwardRelay:
		return bad("forward %q: want %s or %s", c.Forward, ForwardHandoff, ForwardRelay)
	case c.ForwardTLS != "" && c.ForwardTLS != ForwardTLSAuto && c.ForwardTLS != ForwardTLSHandoff && c.ForwardTLS != ForwardTLSSplice && c.ForwardTLS != ForwardTLSRelay:
		return bad("forward TLS %q: want %s, %s, %s or %s", c.ForwardTLS, ForwardTLSAuto, ForwardTLSHandoff, ForwardTLSSplice, ForwardTLSRelay)
	case c.MaxKey < 1 || c.MaxKey > MaxKeyLimit:
		return bad("max key %d: want 1 to %d", c.MaxKey, MaxKeyLimit)
	case c.PreambleTimeout <= 0:
		return bad("preamble timeout %v: want > 0", c.PreambleTimeout)
	case c.OwnerWait <= 0:
		return bad("owner wait %v: want > 0", c.OwnerWait)
	case c.DrainTimeout <= 0:
		return bad("drain timeout %v: want > 0", c.DrainTimeout)
	case c.SecretFile != "" && len(c.Secret) > 0:
		return bad("both a secret and a secret file: set one")
	case c.ConnBufferLimit < 1:
		return bad("conn buffer limit %d: want > 0", c.ConnBufferLimit)
	case c.MaxRestarts < 1:
		return bad("max restarts %d: want > 0", c.MaxRestarts)
	case c.RestartBackoff <= 0:
		return bad("restart backoff %v: want > 0", c.RestartBackoff)
	case c.MaxRestartBackoff < c.RestartBackoff:
		return bad("max restart backoff %v: want >= restart backoff %v", c.MaxRestartBackoff, c.RestartBackoff)
	case c.MaxConns < 0:
		return bad("max conns %d: want >= 0 (0: derived from the descriptor limit)", c.MaxConns)
	case c.KeepAlive >= 0 && c.KeepAlive < time.Second:
		return bad("keepalive %v: want >= 1s, or < 0 to disable", c.KeepAlive)
	case c.IdleTimeout < 0:
		return bad("idle timeout %v: want >= 0 (0: off)", c.IdleTimeout)
	case c.AdminPprof && c.Admin == "":
		return bad("admin pprof without an admin address")
	case c.UpgradeTimeout <= 0:
		return bad("upgrade timeout %v: want > 0", c.UpgradeTimeout)
	case c.TicketKeyRotation <= 0:
		return bad("TLS ticket key rotation %v: want > 0", c.TicketKeyRotation)
	}
	if err := c.validateKeyFrom(anyTLS); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.Cluster.validate(c.Workers); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.Admin != "" {
		if err := validAdmin(c.Admin); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if !anyTLS && (len(c.TLS.Certs) > 0 || c.TLS.ClientCA != "") {
		return bad("TLS certificates (--cert, --key, --client-ca) but no tls:// listener: listen on tls://HOST:PORT, or serve plaintext without them")
	}
	if anyTLS {
		if _, err := c.TLS.Build(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return nil
}

// ListenAddr is a parsed listen URL.
type ListenAddr struct {
	// Network is "tcp" or "unix".
	Network string
	// Address is "HOST:PORT" or a path.
	Address string
	// TLS is set for "tls://HOST:PORT": TCP, with TLS terminated by the
	// worker that accepts (Config.TLS).
	TLS bool
	// SocketFile is the mode and owner of a Unix socket file, from
	// "?mode=&owner=&group=" (unix only). Default: as the process
	// creates files (umask; its own user and group).
	SocketFile SocketFileOptions
}

func (a ListenAddr) String() string {
	if a.TLS {
		return "tls://" + a.Address
	}
	return a.Network + "://" + a.Address
}

// ParseListenURL parses "tcp://HOST:PORT", "tls://HOST:PORT" or
// "unix:///path", the last with optional socket file options
// "?mode=0660&owner=USER&group=GROUP" (see ListenAddr). Without a scheme,
// "HOST:PORT" means tcp://HOST:PORT and "/path" means unix:///path.
func ParseListenURL(s string) (ListenAddr, error) {
	u, err := url.Parse(withListenScheme(s))
	if err != nil {
		return ListenAddr{}, fmt.Errorf("listen address %q: want %s", s, listenForms)
	}
	switch u.Scheme {
	case "tcp", "tls":
		if u.Path != "" || u.RawQuery != "" || u.User != nil || u.Host == "" {
			return ListenAddr{}, fmt.Errorf("listen address %q: want %s://HOST:PORT", s, u.Scheme)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil {
			return ListenAddr{}, fmt.Errorf("listen address %q: want %s://HOST:PORT: %v", s, u.Scheme, err)
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && port != "0") {
			return ListenAddr{}, fmt.Errorf("listen address %q: bad port %q", s, port)
		}
		return ListenAddr{Network: "tcp", Address: net.JoinHostPort(host, port), TLS: u.Scheme == "tls"}, nil
	case "unix":
		if u.Host != "" || u.Path == "" {
			return ListenAddr{}, fmt.Errorf("listen address %q: want unix:///absolute/path", s)
		}
		a := ListenAddr{Network: "unix", Address: u.Path}
		if err := a.parseSocketOptions(u.RawQuery); err != nil {
			return ListenAddr{}, fmt.Errorf("listen address %q: %w", s, err)
		}
		return a, nil
	case "":
		return ListenAddr{}, fmt.Errorf("listen address %q: want %s", s, listenForms)
	}
	return ListenAddr{}, fmt.Errorf("listen address %q: unsupported scheme %q (want %s)", s, u.Scheme, listenForms)
}
