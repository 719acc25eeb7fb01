package builtin

import (
	"fmt"
	"sort"
	"strings"

	"github.com/subordinate/subordinate/server"
)

var factories = map[string]server.HandlerFactory{
	"echo":   Echo,
	"chat":   Chat,
	"whoami": WhoAmI,
}

// Lookup returns the factory of the built-in handler called name. The
// proxy handler needs its configuration: make it with Proxy.
func Lookup(name string) (server.HandlerFactory, error) {
	if name == "proxy" {
		return nil, fmt.Errorf("the proxy handler needs an upstream: use Proxy")
	}
	f, ok := factories[name]
	if !ok {
		return nil, fmt.Errorf("unknown handler %q (have: %s)", name, strings.Join(Names(), ", "))
	}
	return f, nil
}

// Names returns the names of the built-in handlers, sorted.
func Names() []string {
	names := []string{"proxy"}
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
