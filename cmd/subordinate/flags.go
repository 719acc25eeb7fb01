package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// parseFlags parses args into fs, the flags of command cmd ("serve"), as
// the commands do:
//   - -h or --help prints fs.Usage to stdout (help asked for is output,
//     not an error) and returns 0, true;
//   - a bad flag prints one line that names the flag and says what it
//     expects ("--drain-timeout 10: want a duration such as 10s"), and a
//     hint to run -h, to stderr, and returns 2, true;
//   - otherwise it returns 0, false: go on.
//
// fs.Usage must write to fs.Output(); afterwards fs writes to stderr.
func parseFlags(cmd string, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return 0, true
	}
	fmt.Fprintf(stderr, "subordinate %s: %s\n", cmd, flagError(fs, err))
	fmt.Fprintf(stderr, "run 'subordinate %s -h' for its flags\n", cmd)
	return 2, true
}

// The errors of package flag, which name a flag with one dash.
var (
	flagInvalidRE = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-(\S+): (.*)$`)
	flagNoArgRE   = regexp.MustCompile(`^flag needs an argument: -(\S+)$`)
	flagUnknownRE = regexp.MustCompile(`^flag provided but not defined: -(\S+)$`)
)

// flagError rewrites an error of fs.Parse to name the flag as the docs do
// (--name) and say what it expects.
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := flagInvalidRE.FindStringSubmatch(msg); m != nil {
		want := expects(fs.Lookup(m[2]))
		if want == "" || (m[3] != "parse error" && m[3] != "value out of range") {
			// A Value of our own: its error says what is wrong.
			return fmt.Sprintf("--%s %s: %s", m[2], m[1], m[3])
		}
		if m[3] == "value out of range" {
			return fmt.Sprintf("--%s %s: out of range: want %s", m[2], m[1], want)
		}
		return fmt.Sprintf("--%s %s: want %s", m[2], m[1], want)
	}
	if m := flagNoArgRE.FindStringSubmatch(msg); m != nil {
		if want := expects(fs.Lookup(m[1])); want != "" {
			return fmt.Sprintf("--%s needs a value: %s", m[1], want)
		}
		return fmt.Sprintf("--%s needs a value", m[1])
	}
	if m := flagUnknownRE.FindStringSubmatch(msg); m != nil {
		// "flag provided but not defined" is what Go users grep for.
		return fmt.Sprintf("flag provided but not defined: -%s (no flag --%s)", m[1], m[1])
	}
	return msg
}

// expecter is a flag.Value that says what it expects.
type expecter interface{ Expects() string }

// expects describes the values flag f takes, from its type.
func expects(f *flag.Flag) string {
	if f == nil {
		return ""
	}
	if e, ok := f.Value.(expecter); ok {
		return e.Expects()
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case time.Duration:
		return "a duration such as 10s, 500ms or 1m30s (a number alone has no unit)"
	case int, int64:
		return "a whole number such as " + exampleInt(f.DefValue)
	case uint, uint64:
		return "a whole number >= 0 such as " + exampleInt(f.DefValue)
	case float64:
		return "a number such as " + exampleInt(f.DefValue)
	case bool:
		return "true or false (--" + f.Name + " alone means true; --" + f.Name + "=false)"
	}
	return ""
}

// exampleInt is the default of a flag as an example value, or a
// generic one.
func exampleInt(def string) string {
	if def == "" || def == "0" || strings.HasPrefix(def, "-") {
		return "16"
	}
	return def
}

// flagGiven reports whether the flag name was set on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
