package kubernetes

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// flagValues returns the values given to the flag name (without dashes)
// in args, in order, in any of the forms Go's flag package takes:
// -name value, --name value, -name=value, --name=value. It stops at the
// first argument that is not a flag after the command (args[0]), or at
// --, as the flag package does.
func flagValues(args []string, name string) []string {
	var out []string
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") {
			break
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		n, v, hasValue := strings.Cut(a, "=")
		if !hasValue && i+1 < len(args) && !isBoolFlag(n) {
			i++
			v = args[i]
		}
		if n == name {
			out = append(out, v)
		}
	}
	return out
}

// isBoolFlag reports whether serve's flag n takes no value of its own.
func isBoolFlag(n string) bool {
	switch n {
	case "accept-proxy-protocol", "crash-on-panic", "upstream-proxy-protocol", "admin-pprof":
		return true
	}
	return false
}

// flagValue returns the one value of the flag name in args: an error if
// it is missing or given more than once.
func flagValue(args []string, name string) (string, error) {
	v := flagValues(args, name)
	switch len(v) {
	case 0:
		return "", fmt.Errorf("no --%s", name)
	case 1:
		return v[0], nil
	}
	return "", fmt.Errorf("--%s given %d times", name, len(v))
}

// flagInt returns the one value of the flag name as an integer.
func flagInt(args []string, name string) (int, error) {
	v, err := flagValue(args, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("--%s %q: %w", name, v, err)
	}
	return n, nil
}

// addrPort returns the host and port of a listener address, HOST:PORT or
// SCHEME://HOST:PORT; scheme is "" for the plain form.
func addrPort(addr string) (scheme, host string, port int, err error) {
	hostport := addr
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return "", "", 0, fmt.Errorf("address %q: %w", addr, err)
		}
		scheme, hostport = u.Scheme, u.Host
	}
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", "", 0, fmt.Errorf("address %q: bad port %q", addr, p)
	}
	return scheme, host, port, nil
}
