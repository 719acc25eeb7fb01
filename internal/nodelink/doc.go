// Package nodelink is the links between the nodes of a cluster: one TCP
// connection with mutual TLS per pair of nodes, a frame.NodeHello each
// way, then a long-lived smux session that either end opens streams on.
//
// Node i dials every node j > i and accepts from every node below it, so
// a pair has one link; the dialling end re-dials with back-off when the
// link drops, and the accepting end replaces a link its peer re-made. A
// node without a certificate from the cluster's CA fails the TLS
// handshake; one that disagrees on the cluster (its list, size, worker
// count or protocol version) is refused after the hellos, with a log
// line that says what differs.
//
// A worker that drains (Links.Drain) sends each peer a go-away and takes
// no new stream: the peers' new streams go to its successor, which shares
// its listener or dials them itself.
package nodelink
