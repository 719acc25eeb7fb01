package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/subordinate/subordinate/frame"
	"github.com/subordinate/subordinate/internal/nodelink"
	"github.com/subordinate/subordinate/shard"
)

// A worker of a cluster node (docs/CLUSTER.md) links with the same worker
// of every other node (nodelink), on its own cluster listener. A key
// shard.Place puts on node j and worker v reaches it in two steps: on the
// accepting node, it goes to worker v as any connection for worker v does
// (locally, or by hand-off, relay or splice); worker v, finding the key's
// node is not its own, relays it over its link to worker v of node j,
// which serves it as a relayed connection. One relay per connection, and
// no mesh hop on either node.

// startNodes starts the worker's links to the other nodes, on the cluster
// listener the master bound for it. Outside a cluster it does nothing.
func (r *routed) startNodes() error {
	f := r.info.Cluster
	if f == nil {
		return nil
	}
	r.info.Cluster = nil
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("cluster listener: %w", err)
	}
	cc := &r.info.Config.Cluster
	tlsCfg, err := nodelink.TLSConfig(cc.Cert, cc.Key, cc.CA)
	if err != nil {
		ln.Close()
		return err
	}
	r.nodes, err = nodelink.Start(nodelink.Config{
		Members:  r.info.Members,
		Workers:  r.info.Count,
		Worker:   r.info.Index,
		TLS:      tlsCfg,
		Listener: ln,
		Accept:   r.onNodeStream,
		Log:      r.log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	return nil
}

// nodeOf returns the node that owns key (nil: a direct connection, which
// names a worker of the node it reaches).
func (r *routed) nodeOf(key []byte) int {
	if r.nnodes <= 1 || key == nil {
		return r.self
	}
	return shard.Jump(shard.NodeHash(key), r.nnodes)
}

// remote reports whether key belongs to another node.
func (r *routed) remote(key []byte) bool { return r.nodeOf(key) != r.self }

// toNode relays client, whose key this worker holds for another node, to
// the same worker of that node, on a goroutine of its own; early are the
// bytes read past the key, tlsi the TLS state of a connection this node
// terminated. With sock, client holds a socket the caller counted in
// r.socks, counted out when the relay ends.
func (r *routed) toNode(client net.Conn, key []byte, early []byte, tlsi *TLSInfo, sock bool) {
	node := r.nodeOf(key)
	r.gstats.toNode.Add(1)
	r.hold()
	go func() {
		defer r.release()
		if sock {
			defer r.socks.Add(-1)
		}
		r.forwardTo(client, key, r.info.Index, node, early, tlsi)
	}()
}

// relayToNode takes a connection this worker accepted, for a key of
// another node, off the loop and relays it there (toNode).
func (r *routed) relayToNode(gc gnet.Conn, pc *pconn, key []byte) gnet.Action {
	client, early, err := r.detach(gc)
	if err != nil {
		r.log.Warn("cannot forward a connection to its node", "node", r.nodeOf(key), "err", err)
		return r.refuseConn(gc, "server busy")
	}
	pc.detached = true // gnet closes its descriptor; the duplicate keeps the socket
	r.toNode(withAddrs(client, pc), key, early, nil, true)
	return gnet.Close
}

// arrivalToNode relays a socket another worker handed to this one, for a
// key of another node, there (toNode), in OnOpen: it is acknowledged, so
// it is this worker's from now on.
func (r *routed) arrivalToNode(gc gnet.Conn, a *arrival) ([]byte, gnet.Action) {
	client, rest, err := r.detach(gc)
	if err != nil {
		r.log.Warn("cannot forward a connection to its node", "node", r.nodeOf(a.m.Key), "err", err)
		r.countRefusal("server busy")
		return appendRefusal(nil, r.form(false), "server busy", 0), gnet.Close
	}
	remote, local := client.RemoteAddr(), client.LocalAddr()
	early, tlsi := a.m.Early, (*TLSInfo)(nil)
	if a.m.Client.IsValid() { // declared by a PROXY header
		remote, local = net.TCPAddrFromAddrPort(a.m.Client), net.TCPAddrFromAddrPort(a.m.Local)
	}
	if h := a.hdr; h != nil { // relayed by the sender, through a socketpair
		remote, local, tlsi, early = h.Client, h.Local, h.TLS, h.Early
	}
	early = append(append([]byte(nil), early...), rest...)
	r.toNode(&proxiedConn{Conn: client, remote: remote, local: local}, a.m.Key, early, tlsi, true)
	return nil, gnet.Close
}

// streamToNode relays a mesh stream another worker opened to this one,
// for a key of another node, there (toNode): this worker accepts it
// first, as its owner on this node.
func (r *routed) streamToNode(st net.Conn, hdr *frame.StreamHeader) {
	if _, err := st.Write([]byte{frame.StreamAccepted}); err != nil {
		st.Close()
		return
	}
	r.toNode(&proxiedConn{Conn: st, remote: hdr.Client, local: hdr.Local}, hdr.Key, hdr.Early, hdr.TLS, false)
}

// openNode opens a stream to the same worker of node, waiting for its
// link until deadline.
func (r *routed) openNode(node int, deadline time.Time) (net.Conn, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	st, err := r.nodes.Open(ctx, node)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// onNodeStream serves a connection another node relays here: it reads
// the stream header, checks the key is this worker's, and hands the
// stream to the handler as a relayed Conn. It runs on its own goroutine
// (nodelink.Config.Accept).
func (r *routed) onNodeStream(node int, st *nodelink.Stream) {
	select {
	case <-r.shard.running:
	case <-r.stopped:
		st.Close()
		return
	}
	_ = st.SetReadDeadline(time.Now().Add(r.info.Config.PreambleTimeout))
	hdr, err := frame.ReadStreamHeader(st, frame.HeaderLimits{MaxKey: r.info.Config.MaxKey})
	if err != nil {
		r.log.Warn("bad stream header from another node", "node", node, "err", err)
		st.Close()
		return
	}
	_ = st.SetReadDeadline(time.Time{})
	key := hdr.Key
	if hdr.Direct || len(key) == 0 || r.remote(key) || !r.owns(key, 0) {
		r.log.Error("stream from another node for a key not this worker's", "node", node, "key", printable(hdr.Key), "direct", hdr.Direct)
		st.Close()
		return
	}
	r.gstats.fromNode.Add(1)
	early := hdr.Early
	if err := r.shard.run(func() {
		c := r.newConn(key, false, r.info.Index)
		c.fwd, c.relayed, c.remote, c.local, c.tls = true, true, hdr.Client, hdr.Local, hdr.TLS
		c.viaNode = node + 1
		r.openStream(c, st, early, true)
	}); err != nil {
		st.Close()
	}
}

// tlsToNode relays a TLS connection this worker terminated, for a key of
// another node, there (toNode), decrypted: on Go's poller, off gnet.
func (r *routed) tlsToNode(ref fedRef, tc *tls.Conn, tr *tlsTransport, key, early []byte, info *TLSInfo) {
	if !r.fedDetach(ref, tr) {
		_ = tc.Close()
		return
	}
	r.toNode(tc, key, early, info, true)
}
