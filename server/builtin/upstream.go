package builtin

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Upstream is a parsed --upstream template: the address of each shard's
// own upstream, written with the shard index in braces.
//
//	tcp://127.0.0.1:{9000+shard}   shard 3 → tcp 127.0.0.1:9003
//	unix:///run/app/{shard}.sock    shard 3 → unix /run/app/3.sock
//	127.0.0.1:{9000+shard}         shard 3 → tcp 127.0.0.1:9003 (no scheme: tcp)
//
// A placeholder is {shard}, {shard+N} or {N+shard} with N a decimal
// integer; there may be several. Nothing else may be in braces.
type Upstream struct {
	template string
}

var placeholder = regexp.MustCompile(`\{([^{}]*)\}`)

// ParseUpstream checks a template.
func ParseUpstream(template string) (*Upstream, error) {
	u := &Upstream{template: template}
	for _, m := range placeholder.FindAllStringSubmatch(template, -1) {
		if _, err := offset(m[1]); err != nil {
			return nil, fmt.Errorf("upstream %q: %w", template, err)
		}
	}
	rest := placeholder.ReplaceAllString(template, "0")
	if strings.ContainsAny(rest, "{}") {
		return nil, fmt.Errorf("upstream %q: unbalanced braces", template)
	}
	for _, shard := range []int{0, 1} {
		if _, _, err := u.Expand(shard); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// offset parses the inside of a placeholder.
func offset(s string) (int, error) {
	s = strings.ReplaceAll(s, " ", "")
	switch {
	case s == "shard":
		return 0, nil
	case strings.HasPrefix(s, "shard+"):
		return strconv.Atoi(s[len("shard+"):])
	case strings.HasSuffix(s, "+shard"):
		return strconv.Atoi(s[:len(s)-len("+shard")])
	}
	return 0, fmt.Errorf("placeholder {%s}: want {shard}, {shard+N} or {N+shard}", s)
}

// Expand returns the network and address of shard's upstream.
func (u *Upstream) Expand(shard int) (network, address string, err error) {
	s := placeholder.ReplaceAllStringFunc(u.template, func(m string) string {
		n, _ := offset(m[1 : len(m)-1])
		return strconv.Itoa(n + shard)
	})
	p, err := url.Parse(upstreamScheme(s))
	if err != nil {
		return "", "", fmt.Errorf("upstream %q: want tcp://HOST:PORT, unix:///path or HOST:PORT", s)
	}
	switch p.Scheme {
	case "tcp":
		if _, _, err := net.SplitHostPort(p.Host); err != nil || p.Path != "" || p.RawQuery != "" {
			return "", "", fmt.Errorf("upstream %q: want tcp://HOST:PORT", s)
		}
		return "tcp", p.Host, nil
	case "unix":
		if p.Host != "" || p.Path == "" {
			return "", "", fmt.Errorf("upstream %q: want unix:///path", s)
		}
		return "unix", p.Path, nil
	}
	return "", "", fmt.Errorf("upstream %q: want tcp://HOST:PORT, unix:///path or HOST:PORT", s)
}

// upstreamScheme gives an address without a scheme its implied one, as
// for --listen: "/path" is a Unix socket, HOST:PORT TCP.
func upstreamScheme(s string) string {
	if s == "" || strings.Contains(s, "://") {
		return s
	}
	if strings.HasPrefix(s, "/") {
		return "unix://" + s
	}
	return "tcp://" + s
}

// String returns the template.
func (u *Upstream) String() string { return u.template }
