package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"

	"golang.org/x/term"

	"github.com/subordinate/subordinate/bench"
)

func init() {
	register("bench", command{summary: "drive load against a server and measure it", run: runBench})
}

// runBench is `subordinate bench`: it parses the flags into a bench.Config,
// runs it, and prints a summary (and with --json one JSON object as the
// last line of stdout). Exit status: 0 when at least one request was
// echoed, 1 when none was, 2 for bad flags.
func runBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("subordinate bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := bench.DefaultConfig()
	var (
		addr       = fs.String("addr", def.Addr, "server `HOST:PORT`, or a Unix socket path")
		conns      = fs.Int("conns", def.Conns, "concurrent connections (connect mode: concurrent clients)")
		duration   = fs.Duration("duration", def.Duration, "measured time, after the warmup")
		requests   = fs.Int64("requests", 0, "stop after this many requests instead of --duration")
		warmup     = fs.Duration("warmup", 0, "unmeasured load before measuring")
		size       = fs.Int("size", def.Size, "payload bytes per request")
		keys       = fs.Int("keys", def.Keys, "number of distinct keys (k0, k1, ...)")
		dist       = fs.String("dist", "uniform", "key distribution: uniform or zipf")
		zipfS      = fs.Float64("zipf-s", def.ZipfS, "zipf exponent, > 1")
		seed       = fs.Int64("seed", def.Seed, "seed of the key draws and payloads")
		keyFrom    = fs.String("key-from", "frame", "how each connection presents its key, as serve --key-from reads it: frame (the preamble), sni (TLS server name k<i>.bench; needs --tls), client-ip[/N[,M]] (each connection bound to a loopback address of its own, 127.x.y.z: --addr must be IPv4 loopback), http-header:NAME, http-cookie:NAME, http-path:N, http-query:NAME (an HTTP/1.1 request head first, echoed back by the server)")
		frameName  = fs.String("frame", "line", "preamble: line, binary, direct (line-encoded) or direct-binary")
		secretFile = fs.String("secret-file", "", "file holding the secret (frame direct)")
		shards     = fs.Int("shards", 0, "number of shards (frame direct): key i goes to shard i mod shards")
		mode       = fs.String("mode", "pingpong", "pingpong, pipeline or connect")
		depth      = fs.Int("depth", 0, "requests in flight per connection in pipeline mode (default 16)")
		useTLS     = fs.Bool("tls", false, "connect with TLS")
		insecure   = fs.Bool("tls-insecure", false, "with --tls, do not verify the server certificate")
		caFile     = fs.String("tls-ca", "", "with --tls, PEM file of the CA certificates to trust")
		serverName = fs.String("tls-server-name", "", "with --tls, the name to verify (default: the host of --addr)")
		tlsResume  = fs.Bool("tls-resume", false, "with --tls, every connection resumes the TLS session of an earlier one (default: full handshakes)")
		linger0    = fs.Bool("linger0", false, "close connections with a reset (SO_LINGER 0): no TIME_WAIT in connect mode")
		timeout    = fs.Duration("timeout", def.Timeout, "bound on each dial, handshake and request")
		maxErrors  = fs.Int64("max-errors", 0, "stop the run after this many errors (0: never), to see at once why a server fails")
		asJSON     = fs.Bool("json", false, "print the result as one JSON object, the last line of stdout")
	)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: subordinate bench [flags]")
		fmt.Fprintln(fs.Output(), "\nDrives closed-loop echo load against --addr and measures it.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	if code, done := parseFlags("bench", fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "subordinate bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg := bench.Config{
		Addr: *addr, Conns: *conns, Requests: *requests, Warmup: *warmup,
		Size: *size, Keys: *keys, ZipfS: *zipfS, Seed: *seed, Shards: *shards,
		Depth: *depth, Linger0: *linger0, Timeout: *timeout, MaxErrors: *maxErrors,
		TLSResume: *tlsResume, KeyFrom: *keyFrom,
	}
	if *requests == 0 {
		cfg.Duration = *duration
	}
	var err error
	if cfg.Dist, err = bench.ParseDist(*dist); err == nil {
		if cfg.Frame, err = bench.ParseFrame(*frameName); err == nil {
			cfg.Mode, err = bench.ParseMode(*mode)
		}
	}
	if err == nil && *secretFile != "" {
		cfg.Secret, err = readSecret(*secretFile)
	}
	if err == nil && *useTLS {
		cfg.TLS, err = benchTLS(*insecure, *caFile, *serverName)
	} else if err == nil && (*insecure || *caFile != "" || *serverName != "" || *tlsResume) {
		err = errors.New("--tls-insecure, --tls-ca, --tls-server-name and --tls-resume need --tls")
	}
	if err == nil {
		err = cfg.Verify()
	}
	if err != nil {
		fmt.Fprintf(stderr, "subordinate bench: %v\n", err)
		return 2
	}

	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		cfg.Progress = func(p bench.Progress) {
			phase := "run"
			if p.Warmup {
				phase = "warmup"
			}
			fmt.Fprintf(stderr, "\r\033[K%s %5.1fs  %10d req  %10.0f req/s  %d errors",
				phase, p.Elapsed.Seconds(), p.Requests, p.RPS, p.Errors)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if cfg.Progress != nil {
		fmt.Fprint(stderr, "\r\033[K")
	}
	if err != nil {
		fmt.Fprintf(stderr, "subordinate bench: %v\n", err)
		return 2
	}
	rep := res.Report()
	if *asJSON {
		printSummary(stderr, cfg.Addr, rep)
		line, err := json.Marshal(rep)
		if err != nil {
			fmt.Fprintf(stderr, "subordinate bench: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", line)
	} else {
		printSummary(stdout, cfg.Addr, rep)
	}
	if rep.Requests == 0 {
		explainNothing(stderr, cfg.Addr, cfg.TLS != nil, rep)
		return 1
	}
	return 0
}

// printSummary writes the human summary of a run.
func printSummary(w io.Writer, addr string, r bench.Report) {
	keys := "frame " + r.Frame
	if r.KeyFrom != "" {
		keys = "key-from " + r.KeyFrom
	}
	fmt.Fprintf(w, "%s  mode %s (depth %d)  %s  %d conns  %d B  %d keys %s\n",
		addr, r.Mode, r.Depth, keys, r.Conns, r.Size, r.Keys, r.Dist)
	fmt.Fprintf(w, "  %d requests in %.2fs: %.0f req/s, %.2f MB/s\n", r.Requests, r.DurationS, r.RPS, r.MBps)
	fmt.Fprintf(w, "  latency µs: p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n",
		r.P50us, r.P90us, r.P99us, r.P999us, r.MaxUs)
	if r.TLSHandshakes > 0 {
		fmt.Fprintf(w, "  %d TLS handshakes, %d resumed\n", r.TLSHandshakes, r.TLSResumed)
	}
	if r.ErrorTotal == 0 {
		fmt.Fprintln(w, "  no errors")
		return
	}
	fmt.Fprintf(w, "  %d errors:", r.ErrorTotal)
	for _, k := range sortedKeys(r.Errors) {
		fmt.Fprintf(w, " %s %d", k, r.Errors[k])
	}
	fmt.Fprintln(w)
	printReasons(w, r)
}

func sortedKeys(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// readSecret reads a secret file; one trailing newline is not part of the
// secret. The file is bounded by bench.MaxSecretLen.
func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, bench.MaxSecretLen+3))
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if len(b) == 0 || len(b) > bench.MaxSecretLen {
		return nil, fmt.Errorf("secret file %s: want 1 to %d bytes", path, bench.MaxSecretLen)
	}
	return b, nil
}

// benchTLS builds the client TLS configuration of the flags.
func benchTLS(insecure bool, caFile, serverName string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no PEM certificate", caFile)
		}
	}
	return c, nil
}
