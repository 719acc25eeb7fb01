package builtin

import (
	"fmt"
	"os"

	"github.com/subordinate/subordinate/server"
)

// WhoAmI makes the whoami handler, an operator's probe: it answers one
// line that says where the connection landed,
//
//	shard=<owner> pid=<worker pid> via=<accepting shard> key="<key>"
//
// and then echoes like Echo. A direct connection has key="" and says
// direct=true.
func WhoAmI(*server.Shard) (server.Handler, error) { return whoami{}, nil }

type whoami struct{ echo }

func (whoami) OnOpen(c *server.Conn) {
	direct := ""
	if c.Direct() {
		direct = " direct=true"
	}
	_, _ = fmt.Fprintf(c, "shard=%d pid=%d via=%d key=%q%s\n",
		c.Shard().Index(), os.Getpid(), c.AcceptedBy(), c.Key(), direct)
}
