package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Mode is how a connection sends its requests.
type Mode int

const (
	// PingPong keeps one request in flight per connection.
	PingPong Mode = iota
	// Pipeline keeps Config.Depth requests in flight per connection.
	Pipeline
	// Connect opens a new connection for every request: dial, preamble,
	// one request, close.
	Connect
)

var modeNames = []string{"pingpong", "pipeline", "connect"}

// String returns the name used on the command line: pingpong, pipeline or
// connect.
func (m Mode) String() string { return enumName(modeNames, int(m)) }

// ParseMode parses a Mode name.
func ParseMode(s string) (Mode, error) {
	i, err := enumParse("mode", modeNames, s)
	return Mode(i), err
}

// Frame is the preamble a connection starts with.
type Frame int

const (
	// FrameLine sends the key as a text line.
	FrameLine Frame = iota
	// FrameBinary sends the key with a binary length prefix.
	FrameBinary
	// FrameDirect addresses a shard by index, proven with the secret, in
	// the line encoding ("!<shard> <token>\n").
	FrameDirect
	// FrameDirectBinary is FrameDirect in the binary encoding, for a
	// server with --frame binary.
	FrameDirectBinary
)

var frameNames = []string{"line", "binary", "direct", "direct-binary"}

// String returns the name used on the command line: line, binary, direct
// or direct-binary.
func (f Frame) String() string { return enumName(frameNames, int(f)) }

// ParseFrame parses a Frame name.
func ParseFrame(s string) (Frame, error) {
	i, err := enumParse("frame", frameNames, s)
	return Frame(i), err
}

// Dist is the distribution keys are drawn from.
type Dist int

const (
	// Uniform draws every key with the same probability.
	Uniform Dist = iota
	// Zipf draws key i with a probability proportional to 1/(1+i)^s
	// (Config.ZipfS): a few hot keys and a long tail.
	Zipf
)

var distNames = []string{"uniform", "zipf"}

// String returns the name used on the command line: uniform or zipf.
func (d Dist) String() string { return enumName(distNames, int(d)) }

// ParseDist parses a Dist name.
func ParseDist(s string) (Dist, error) {
	i, err := enumParse("dist", distNames, s)
	return Dist(i), err
}

func enumName(names []string, i int) string {
	if i < 0 || i >= len(names) {
		return fmt.Sprintf("invalid(%d)", i)
	}
	return names[i]
}

func enumParse(what string, names []string, s string) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w: %s %q (want %s)", ErrInvalidConfig, what, s, strings.Join(names, ", "))
}

// Limits on a Config, so that every buffer the generator allocates has a
// bound.
const (
	MaxConns     = 10000 // each holds a ~140 KiB histogram
	MaxSize      = 16 << 20
	MaxDepth     = 4096
	MaxInFlight  = 64 << 20 // Depth * Size per connection
	MaxKeys      = 1 << 30
	MaxSecretLen = 4096
)

// ErrInvalidConfig is wrapped by every error Config.Verify returns.
var ErrInvalidConfig = errors.New("bench: invalid config")

// Config is one load profile. The zero value of a field means its default,
// listed with each field; DefaultConfig returns them filled in.
type Config struct {
	// Addr is the server: "host:port" for TCP, or a path (anything with a
	// '/') for a Unix socket. Default "127.0.0.1:7000".
	Addr string

	// Conns is the number of concurrent closed-loop connections (in
	// Connect mode, of concurrent clients each opening one connection per
	// request). Default 50, at most MaxConns.
	Conns int

	// Duration is how long requests are measured, after Warmup. It is
	// ignored when Requests is set. Default 10s.
	Duration time.Duration

	// Requests, when positive, stops the run after this many measured
	// requests instead of after Duration.
	Requests int64

	// Warmup is run before measuring starts; its requests are not counted
	// in the result (its errors are). Default 0.
	Warmup time.Duration

	// Size is the payload of one request, in bytes; the server echoes it.
	// Default 64, at most MaxSize.
	Size int

	// Keys is the number of distinct keys, named "k0" to "k<Keys-1>".
	// A connection draws its key once (in Connect mode, once per request).
	// Default 1000.
	Keys int

	// Dist is the distribution keys are drawn from. Default Uniform.
	Dist Dist

	// ZipfS is the exponent of the Zipf distribution, > 1. Default 1.1.
	ZipfS float64

	// Seed seeds the key draws and the payload bytes, so two runs with the
	// same Config send the same keys. Default 1.
	Seed int64

	// KeyFrom is where the server takes each connection's key from, as
	// `subordinate serve --key-from` spells it (docs/PROTOCOL.md), and so
	// how a connection presents its key. Default "" (or "frame"): the
	// preamble of Frame.
	//
	//   - "sni": the key is the TLS server name (needs TLS); keys are host
	//     names, "k<i>.bench". The certificate is verified against the name
	//     it would be without sni (TLS.ServerName, or the host of Addr).
	//   - "client-ip", "client-ip/N[,M]": each connection is bound to the
	//     loopback address of its key, KeyAddr(i), so that the server's key
	//     is that address (with a prefix, its network): the keys are
	//     addresses. Addr must be an IPv4 loopback address, and the
	//     machine must accept any 127/8 source address (Linux does); at
	//     most MaxClientIPKeys keys.
	//   - "http-header:NAME", "http-cookie:NAME", "http-path:N",
	//     "http-query:NAME": each connection starts with an HTTP/1.1 GET
	//     request head carrying "k<i>" in that header, cookie, path
	//     segment (the segments before it are "k": /k/k7 for http-path:2)
	//     or query parameter. The server gives the whole request to its
	//     handler as early data, so an echo server echoes the head back:
	//     the first reply is the head, checked like any echo, then the
	//     requests' echoes. An HTTP response instead ("HTTP/1.1 400 ...")
	//     is a refusal, counted as KindPreamble.
	//
	// Every source but frame needs Frame line (the default) and no Secret
	// or Shards.
	KeyFrom string

	// Frame is the preamble. Default FrameLine.
	Frame Frame

	// Secret proves a direct preamble (FrameDirect only, required then).
	Secret []byte

	// Shards is the number of shards a direct preamble addresses; key i
	// goes to shard i mod Shards (FrameDirect only, required then).
	Shards int

	// Mode is how requests are sent. Default PingPong.
	Mode Mode

	// Depth is the number of requests in flight per connection in
	// Pipeline mode. Default 16 in Pipeline mode; 1 otherwise.
	Depth int

	// TLS, when set, makes every connection a TLS client with this
	// configuration. When its ServerName is empty and it verifies
	// certificates, the host of Addr is used.
	TLS *tls.Config

	// TLSResume makes every TLS connection offer to resume the session of
	// an earlier connection of the same run: the run keeps a session cache
	// of its own (a tls.NewLRUClientSessionCache), shared by its
	// connections, unless TLS.ClientSessionCache is set. The first
	// handshakes of a run are full; Result.TLSResumed counts those that
	// resumed. Needs TLS. Default false: with a nil
	// TLS.ClientSessionCache, every handshake is full.
	TLSResume bool

	// Linger0 closes each connection with a reset (SO_LINGER 0) instead of
	// a FIN, so that the client keeps no TIME_WAIT socket. It matters in
	// Connect mode, where TIME_WAIT sockets cap the connection rate.
	Linger0 bool

	// Timeout bounds each dial, TLS handshake and request; a request that
	// takes longer counts as a "timeout" error. Default 10s.
	Timeout time.Duration

	// MaxErrors, when positive, stops the run after that many errors
	// (Result.Reasons then says what they were): a server that refuses
	// every connection is diagnosed at once instead of after Duration.
	// Default 0: never stop for errors.
	MaxErrors int64

	// Progress, when set, is called every ProgressInterval from a separate
	// goroutine with the counts so far.
	Progress func(Progress)

	// ProgressInterval is the period of Progress calls. Default 1s.
	ProgressInterval time.Duration
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	var c Config
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:7000"
	}
	if c.Conns == 0 {
		c.Conns = 50
	}
	if c.Duration == 0 && c.Requests == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Size == 0 {
		c.Size = 64
	}
	if c.Keys == 0 {
		c.Keys = 1000
	}
	if c.ZipfS == 0 {
		c.ZipfS = 1.1
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Depth == 0 {
		c.Depth = 1
		if c.Mode == Pipeline {
			c.Depth = 16
		}
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Second
	}
}

// Verify reports the first problem with c, after defaults are applied to
// a copy; the error wraps ErrInvalidConfig.
func (c Config) Verify() error {
	c.setDefaults()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
	}
	switch {
	case c.Conns < 1 || c.Conns > MaxConns:
		return bad("conns %d out of [1, %d]", c.Conns, MaxConns)
	case c.Duration < 0 || c.Requests < 0 || c.Warmup < 0:
		return bad("negative duration, requests or warmup")
	case c.Size < 1 || c.Size > MaxSize:
		return bad("size %d out of [1, %d]", c.Size, MaxSize)
	case c.Keys < 1 || c.Keys > MaxKeys:
		return bad("keys %d out of [1, %d]", c.Keys, MaxKeys)
	case c.Dist != Uniform && c.Dist != Zipf:
		return bad("dist %v", c.Dist)
	case c.Dist == Zipf && !(c.ZipfS > 1):
		return bad("zipf exponent %v must be > 1", c.ZipfS)
	case c.Mode != PingPong && c.Mode != Pipeline && c.Mode != Connect:
		return bad("mode %v", c.Mode)
	case c.Depth < 1 || c.Depth > MaxDepth:
		return bad("depth %d out of [1, %d]", c.Depth, MaxDepth)
	case c.Mode != Pipeline && c.Depth != 1:
		return bad("depth %d needs mode pipeline", c.Depth)
	case int64(c.Depth)*int64(c.Size) > MaxInFlight:
		return bad("depth*size %d over %d bytes", int64(c.Depth)*int64(c.Size), MaxInFlight)
	case c.Timeout < 0 || c.ProgressInterval < 0:
		return bad("negative timeout or progress interval")
	case c.MaxErrors < 0:
		return bad("negative max errors")
	}
	switch c.Frame {
	case FrameLine, FrameBinary:
		if len(c.Secret) > 0 || c.Shards != 0 {
			return bad("secret and shards are for frame direct")
		}
	case FrameDirect, FrameDirectBinary:
		if len(c.Secret) == 0 || len(c.Secret) > MaxSecretLen {
			return bad("frame direct needs a secret of 1 to %d bytes", MaxSecretLen)
		}
		if c.Shards < 1 {
			return bad("frame direct needs shards >= 1")
		}
	default:
		return bad("frame %v", c.Frame)
	}
	if err := c.verifyKeyFrom(); err != nil {
		return bad("%v", err)
	}
	if c.TLSResume && c.TLS == nil {
		return bad("TLS resumption needs TLS")
	}
	if c.TLS != nil && c.TLS.MinVersion != 0 && c.TLS.MinVersion < tls.VersionTLS12 {
		return bad("TLS below 1.2")
	}
	return nil
}

// network returns the dial network of Addr.
func (c *Config) network() string {
	if strings.Contains(c.Addr, "/") {
		return "unix"
	}
	return "tcp"
}
