package builtin

import (
	"crypto/tls"
	"fmt"
	"os"

	"github.com/subordinate/subordinate/server"
)

// WhoAmI makes the whoami handler, an operator's probe: it answers one
// line that says where the connection landed,
//
//	shard=<owner> pid=<worker pid> via=<accepting shard> key="<key>" remote=<client address>
//
// and then echoes like Echo. A direct connection has key="" and says
// direct=true; a connection whose bytes are relayed over the mesh by the
// accepting worker says relayed=true; a TLS connection adds tls=<version> sni="<name>"
// alpn="<protocol>" peer="<client certificate subject>". In a cluster it
// ends in node=<owner's node> via_node=<node that accepted it>.
func WhoAmI(*server.Shard) (server.Handler, error) { return whoami{}, nil }

type whoami struct{ echo }

func (whoami) OnOpen(c *server.Conn) {
	direct := ""
	if c.Direct() {
		direct = " direct=true"
	}
	if c.Relayed() {
		direct += " relayed=true"
	}
	tlsInfo := ""
	if t := c.TLS(); t != nil {
		tlsInfo = fmt.Sprintf(" tls=%s sni=%q alpn=%q peer=%q", tls.VersionName(t.Version), t.ServerName, t.ALPN, t.PeerSubject)
	}
	node := ""
	if c.Shard().Nodes() > 1 {
		node = fmt.Sprintf(" node=%d via_node=%d", c.Shard().Node(), c.AcceptedByNode())
	}
	_, _ = fmt.Fprintf(c, "shard=%d pid=%d via=%d key=%q remote=%s%s%s%s\n",
		c.Shard().Index(), os.Getpid(), c.AcceptedBy(), c.Key(), c.RemoteAddr(), direct, tlsInfo, node)
}
