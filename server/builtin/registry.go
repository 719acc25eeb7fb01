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

// Lookup returns the factory of the built-in handler called name.
func Lookup(name string) (server.HandlerFactory, error) {
	f, ok := factories[name]
	if !ok {
		return nil, fmt.Errorf("unknown handler %q (have: %s)", name, strings.Join(Names(), ", "))
	}
	return f, nil
}

// Names returns the names of the built-in handlers, sorted.
func Names() []string {
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
