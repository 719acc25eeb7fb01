package main

import (
	"bufio"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/keysrc"
	"github.com/subordinate/subordinate/server"
	"github.com/subordinate/subordinate/shard"
)

func init() {
	register("owner", command{summary: "print the shard that owns each key", run: runOwner})
}

// ownerStdin is where owner reads keys when none are given; a variable so
// tests can replace it.
var ownerStdin io.Reader = os.Stdin

// runOwner implements "subordinate owner [--workers N] [--cluster-size M] [--hex]
// [KEY...]": one line per key, KEY<TAB>SHARD (with --cluster-size,
// KEY<TAB>NODE<TAB>WORKER), in the order given. With no KEY
// arguments it reads keys from standard input, one per line (a CR before
// the LF is dropped, as in the line preamble). With --hex, keys are given
// in hex, for keys with bytes a shell cannot pass; they are printed as
// given. Without --workers it uses serve's default, one worker per CPU,
// and says so on stderr (stdout stays KEY<TAB>SHARD lines).
func runOwner(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("owner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workers := fs.Int("workers", runtime.NumCPU(), "number of workers (shards), `N` >= 1, as given to serve (default: one per CPU, as serve)")
	isHex := fs.Bool("hex", false, "keys are given in hex")
	keyFrom := fs.String("key-from", "frame", "the server's --key-from: each argument is then what that source reads (a host name for sni, an IP address for client-ip, a path or URL for http-path, a URL or ?query for http-query, a header's or cookie's value), and each line KEY-SOURCE-INPUT<TAB>KEY<TAB>SHARD")
	maxKey := fs.Int("max-key", server.DefaultMaxKey, "the server's --max-key")
	nodes := fs.Int("cluster-size", 1, "number of nodes `M` of a cluster, as serve's --cluster-size (docs/PROTOCOL.md section 5.2): each line then ends in NODE<TAB>WORKER, the worker counted on that node")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: subordinate owner [--workers N] [--cluster-size M] [--hex] [--key-from SOURCE] [KEY...]")
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), "Prints KEY<TAB>SHARD for each key: the shard, 0 to N-1, that owns it")
		fmt.Fprintln(fs.Output(), "(jump consistent hash of xxh3, docs/PROTOCOL.md section 5). With no KEY,")
		fmt.Fprintln(fs.Output(), "reads keys from standard input, one per line. The shard depends on the number")
		fmt.Fprintln(fs.Output(), "of workers: give the server's --workers. With --cluster-size M, prints")
		fmt.Fprintln(fs.Output(), "KEY<TAB>NODE<TAB>WORKER: the node, 0 to M-1, and its worker.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	if code, done := parseFlags("owner", fs, args, stdout, stderr); done {
		return code
	}
	if *workers < 1 || *workers > shard.MaxShards {
		fmt.Fprintf(stderr, "subordinate owner: --workers must be 1 to %d, not %d\n", shard.MaxShards, *workers)
		fs.Usage()
		return 2
	}
	if *nodes < 1 || *nodes > shard.MaxShards {
		fmt.Fprintf(stderr, "subordinate owner: --cluster-size must be 1 to %d, not %d\n", shard.MaxShards, *nodes)
		fs.Usage()
		return 2
	}
	cluster := flagGiven(fs, "cluster-size")
	if !flagGiven(fs, "workers") {
		fmt.Fprintf(stderr, "subordinate owner: %d workers, one per CPU as serve's default; give --workers N for a server with another count\n", *workers)
	}
	src, err := keysrc.Parse(*keyFrom)
	if err != nil {
		fmt.Fprintf(stderr, "subordinate owner: %v\n", err)
		return 2
	}
	out := bufio.NewWriter(stdout)
	one := func(arg string) error {
		in := arg
		if *isHex {
			b, err := hex.DecodeString(arg)
			if err != nil {
				return fmt.Errorf("key %q is not hex: %w", arg, err)
			}
			in = string(b)
		}
		key, err := src.KeyOf(in, *maxKey)
		if err != nil {
			return fmt.Errorf("%s %q: %w", src, arg, err)
		}
		if len(key) == 0 {
			if src.Kind == keysrc.Frame {
				return fmt.Errorf("empty key: %w", frame.ErrEmptyKey)
			}
			return fmt.Errorf("%s %q: no key in it (the server refuses such a connection, or uses --default-key)", src, arg)
		}
		owner := strconv.Itoa(shard.Owner(key, *workers))
		if cluster {
			node, worker := shard.Place(key, *nodes, *workers)
			owner = strconv.Itoa(node) + "\t" + strconv.Itoa(worker)
		}
		if src.Kind == keysrc.Frame {
			_, err = fmt.Fprintf(out, "%s\t%s\n", arg, owner)
		} else {
			_, err = fmt.Fprintf(out, "%s\t%s\t%s\n", arg, key, owner)
		}
		return err
	}
	if fs.NArg() > 0 {
		for _, arg := range fs.Args() {
			if err := one(arg); err != nil {
				out.Flush()
				fmt.Fprintf(stderr, "subordinate owner: %v\n", err)
				return 1
			}
		}
	} else {
		sc := bufio.NewScanner(ownerStdin)
		// A hex key is twice as long as the longest key; allow CR LF.
		sc.Buffer(make([]byte, 0, 4096), 2*frame.MaxKeyLimit+2)
		for sc.Scan() {
			line := sc.Text()
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			if err := one(line); err != nil {
				out.Flush()
				fmt.Fprintf(stderr, "subordinate owner: %v\n", err)
				return 1
			}
		}
		if err := sc.Err(); err != nil {
			out.Flush()
			fmt.Fprintf(stderr, "subordinate owner: reading keys: %v\n", err)
			return 1
		}
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "subordinate owner: %v\n", err)
		return 1
	}
	return 0
}
