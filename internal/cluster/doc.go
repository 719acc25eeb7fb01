// Package cluster is what a node knows of the cluster it belongs to: the
// ordered list of nodes, its own index in it, and how both are given
// (flags, a file, a StatefulSet's template and hostname).
//
// Ownership comes from that list, never from gossip: node i of the list
// owns the keys shard.Place puts on node i, and every node is given the
// same list. Growing the cluster appends nodes at the end (only the keys
// the new nodes take move); nodes are never renumbered.
package cluster
