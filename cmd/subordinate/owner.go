package main

import (
	"bufio"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/shard"
)

func init() {
	register("owner", command{summary: "print the shard that owns each key", run: runOwner})
}

// ownerStdin is where owner reads keys when none are given; a variable so
// tests can replace it.
var ownerStdin io.Reader = os.Stdin

// runOwner implements "subordinate owner [--workers N] [--hex] [KEY...]":
// one line per key, KEY<TAB>SHARD, in the order given. With no KEY
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
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: subordinate owner [--workers N] [--hex] [KEY...]")
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), "Prints KEY<TAB>SHARD for each key: the shard, 0 to N-1, that owns it")
		fmt.Fprintln(fs.Output(), "(jump consistent hash of xxh3, docs/PROTOCOL.md section 5). With no KEY,")
		fmt.Fprintln(fs.Output(), "reads keys from standard input, one per line. The shard depends on the number")
		fmt.Fprintln(fs.Output(), "of workers: give the server's --workers.")
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
	if !flagGiven(fs, "workers") {
		fmt.Fprintf(stderr, "subordinate owner: %d workers, one per CPU as serve's default; give --workers N for a server with another count\n", *workers)
	}
	out := bufio.NewWriter(stdout)
	one := func(arg string) error {
		key := []byte(arg)
		if *isHex {
			var err error
			if key, err = hex.DecodeString(arg); err != nil {
				return fmt.Errorf("key %q is not hex: %w", arg, err)
			}
		}
		if len(key) == 0 {
			return fmt.Errorf("empty key: %w", frame.ErrEmptyKey)
		}
		_, err := fmt.Fprintf(out, "%s\t%d\n", arg, shard.Owner(key, *workers))
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
