package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"time"

	"github.com/subordinate/subordinate/internal/ctl"
)

// A worker's figures, for the master's admin endpoint (admin.go). Counting
// must not slow the loop, so nothing here takes a lock or looks up a
// label per event:
//
//   - what happens on the event loop (a connection accepted, opened,
//     forwarded; bytes in and out of a handler) is counted in plain fields
//     of loopStats, written and read on the loop only: the snapshot is
//     taken by a function queued on the loop when the master asks;
//   - what happens on other goroutines too (TLS handshakes, refusals,
//     which happen on the loop and off it) is counted in per-shard
//     atomics, one increment per connection event, in fixed arrays
//     indexed by kind.
//
// A refusal's reason is classified (refusalKind) only when a connection is
// refused, never on the path of a connection served.

// loopStats are the counters the event loop keeps. Loop only.
type loopStats struct {
	accepted  uint64         // connections accepted on this worker's listeners
	opened    [numHow]uint64 // Conns given to the handler, by how they came
	forwarded [numHow]uint64 // connections sent to their owner, by how (handoff, relay)
	bytesIn   uint64         // bytes the handler got from its clients (past the preamble)
	bytesOut  uint64         // bytes the handler wrote to its clients
}

// goStats are the counters kept off the loop: atomics, each incremented
// once per connection event.
type goStats struct {
	forwardedTLS atomic.Uint64 // TLS connections terminated here for their owner
	tlsHandedOff atomic.Uint64 // of them, those handed off with their session
	toNode       atomic.Uint64 // connections relayed to another node (cluster.go)
	fromNode     atomic.Uint64 // connections another node relayed here
	refused      [numRefusal]atomic.Uint64
	tls          [numTLSResult]atomic.Uint64
}

// How a connection reached the handler of its owner (opened), or how it
// was sent to its owner (forwarded).
const (
	howLocal = iota
	howHandoff
	howRelay
	numHow
)

var howNames = [numHow]string{"local", "handoff", "relay"}

// Kinds of refusal: the label values of subordinate_refused_total.
const (
	refPreambleTimeout = iota
	refKeyTooLong
	refBadPreamble
	refDirectRefused
	refBusy
	refOwnerUnavailable
	refDraining
	refClosedBeforeKey
	refTLSHandshake
	refInternal
	refNoKey
	refUntrustedProxy
	refOther
	numRefusal
)

var refusalNames = [numRefusal]string{
	"preamble_timeout", "key_too_long", "bad_preamble", "direct_refused",
	"busy", "owner_unavailable", "draining", "closed_before_key",
	"tls_handshake", "internal", "no_key", "untrusted_proxy", "other",
}

// refusalKind classifies the reason a refusal gives its client (the text
// of its -ERR line, as logged in "refused a connection"; the detail after
// a colon, as in "key too long: longer than 1024 bytes", does not count).
func refusalKind(reason string) int {
	if i := strings.IndexByte(reason, ':'); i >= 0 {
		reason = reason[:i]
	}
	switch reason {
	case "preamble timeout":
		return refPreambleTimeout
	case "key too long":
		return refKeyTooLong
	case "server busy":
		return refBusy
	case "server is draining":
		return refDraining
	case "connection closed before its key":
		return refClosedBeforeKey
	case "internal error":
		return refInternal
	case "empty key", "keys may not start with '!' in the line encoding",
		"unknown binary preamble kind (bad magic byte)", "malformed direct preamble",
		"bad HTTP request", "HTTP request head too large", "bad ClientHello", "not TLS", "bad PROXY header":
		return refBadPreamble
	case "no key":
		return refNoKey
	case "untrusted PROXY source":
		return refUntrustedProxy
	case "direct preamble refused", "direct preambles are disabled on this server":
		return refDirectRefused
	}
	if (strings.HasPrefix(reason, "shard ") || strings.HasPrefix(reason, "node ")) && strings.HasSuffix(reason, " unavailable") {
		return refOwnerUnavailable
	}
	return refOther
}

// Results of TLS handshakes: the label values of
// subordinate_tls_handshakes_total.
const (
	tlsOK = iota
	tlsFailed
	tlsTimeout
	tlsNotTLS
	numTLSResult
)

var tlsResultNames = [numTLSResult]string{"ok", "failed", "timeout", "not_tls"}

// countRefusal counts one refused connection, from any goroutine.
func (r *routed) countRefusal(reason string) {
	r.gstats.refused[refusalKind(reason)].Add(1)
}

// workerStats is a worker's snapshot, as it travels to the master in a
// stats message (JSON). Maps are keyed by label value.
type workerStats struct {
	Shard int `json:"shard"`
	Pid   int `json:"pid"`
	// Loop is false when the event loop did not answer (stopped, or
	// stuck): the loop's figures are then absent.
	Loop      bool              `json:"loop"`
	Draining  bool              `json:"draining"`
	Accepted  uint64            `json:"accepted"`
	Active    int               `json:"active"`
	Sockets   int64             `json:"sockets"`
	MaxConns  int               `json:"max_conns"`
	Opened    map[string]uint64 `json:"opened"`
	Forwarded map[string]uint64 `json:"forwarded"`
	Refused   map[string]uint64 `json:"refused"`
	TLS       map[string]uint64 `json:"tls"`
	BytesIn   uint64            `json:"bytes_in"`
	BytesOut  uint64            `json:"bytes_out"`
	Panics    uint64            `json:"panics"`
	IdleClose uint64            `json:"idle_closed"`

	// The descriptor guard (fdguard.go): descriptors open and the limit
	// (0 where not known), pauses of accepting, and whether it is paused.
	FDs          int    `json:"fds"`
	FDLimit      int    `json:"fd_limit"`
	AcceptPauses uint64 `json:"accept_pauses"`
	AcceptPaused bool   `json:"accept_paused"`

	// Certificate reloads (SIGHUP) that took, and that were refused.
	TLSReloads        uint64 `json:"tls_reloads"`
	TLSReloadFailures uint64 `json:"tls_reload_failures"`

	Goroutines int    `json:"goroutines"`
	HeapBytes  uint64 `json:"heap_bytes"`

	Mesh []meshPeerStats `json:"mesh"`

	// In a cluster: the links to the same worker of the other nodes, and
	// the connections relayed to them and from them (cluster.go).
	Nodes    []nodePeerStats `json:"nodes,omitempty"`
	ToNode   uint64          `json:"to_node,omitempty"`
	FromNode uint64          `json:"from_node,omitempty"`
}

// nodePeerStats is the link to one other node (nodelink.PeerStats).
type nodePeerStats struct {
	Node    int    `json:"node"`
	Up      bool   `json:"up"`
	Links   uint64 `json:"links"`
	Streams int    `json:"streams"`
}

// meshPeerStats is the mesh link to one peer (mesh.PeerStats).
type meshPeerStats struct {
	Peer     int    `json:"peer"`
	Up       bool   `json:"up"`
	Links    uint64 `json:"links"`
	Downs    uint64 `json:"downs"`
	Streams  int    `json:"streams"`
	Opened   uint64 `json:"opened"`
	Accepted uint64 `json:"accepted"`
}

// statsSource is a shard runtime that keeps figures.
type statsSource interface {
	stats(ctx context.Context) workerStats
}

// stats implements statsSource: the loop's counters, copied on the loop
// (unless it does not answer before ctx ends), then the atomics and the
// mesh's figures.
func (r *routed) stats(ctx context.Context) workerStats {
	s := workerStats{Shard: r.info.Index, MaxConns: r.maxConns}
	type fromLoop struct {
		ls       loopStats
		conns    int
		draining bool
		paused   bool
	}
	ch := make(chan fromLoop, 1)
	if r.shard.run(func() { ch <- fromLoop{r.lstats, r.conns, r.draining, r.fds.paused} }) == nil {
		select {
		case l := <-ch:
			s.Loop = true
			s.Accepted, s.Active, s.Draining = l.ls.accepted, l.conns, l.draining
			s.AcceptPaused = l.paused
			s.BytesIn, s.BytesOut = l.ls.bytesIn, l.ls.bytesOut
			s.Opened = make(map[string]uint64, numHow)
			for i, n := range l.ls.opened {
				s.Opened[howNames[i]] = n
			}
			s.Forwarded = map[string]uint64{
				howNames[howHandoff]: l.ls.forwarded[howHandoff],
				howNames[howRelay]:   l.ls.forwarded[howRelay],
			}
		case <-ctx.Done():
		}
	}
	if s.Forwarded != nil {
		handed := r.gstats.tlsHandedOff.Load()
		s.Forwarded[howNames[howHandoff]] += handed
		s.Forwarded[howNames[howRelay]] += r.gstats.forwardedTLS.Load() - handed
	}
	s.Refused = make(map[string]uint64, numRefusal)
	for i := range r.gstats.refused {
		s.Refused[refusalNames[i]] += r.gstats.refused[i].Load()
	}
	s.TLS = make(map[string]uint64, numTLSResult)
	for i := range r.gstats.tls {
		s.TLS[tlsResultNames[i]] = r.gstats.tls[i].Load()
	}
	s.Sockets = r.socks.Load()
	s.Panics = r.panics.Load()
	s.IdleClose = r.idleClosed.Load()
	s.AcceptPauses = r.fds.pauses.Load()
	if r.certs != nil {
		s.TLSReloads, s.TLSReloadFailures = r.certs.reloads.Load(), r.certs.reloadFailures.Load()
	}
	s.FDs, _, _ = openDescriptors()
	s.FDLimit = r.fds.limit
	for _, p := range r.mesh.Stats() {
		s.Mesh = append(s.Mesh, meshPeerStats{
			Peer: p.Peer, Up: p.Up, Links: p.Links, Downs: p.Downs,
			Streams: p.Streams, Opened: p.Opened, Accepted: p.Accepted,
		})
	}
	if r.nodes != nil {
		for _, p := range r.nodes.Stats() {
			s.Nodes = append(s.Nodes, nodePeerStats{Node: p.Node, Up: p.Up, Links: p.Links, Streams: p.Streams})
		}
		s.ToNode, s.FromNode = r.gstats.toNode.Load(), r.gstats.fromNode.Load()
	}
	return s
}

// statsLoopWait bounds how long a worker waits for its loop to copy its
// counters; the master waits adminStatsTimeout for the whole answer.
const statsLoopWait = 500 * time.Millisecond

// answerStats answers the master's stats request req with this worker's
// snapshot. It runs on its own goroutine, so that a loop slow to answer
// never holds up the worker's control messages.
func answerStats(cc *ctl.Conn, rt shardRuntime, shard int, req *ctl.Stats) {
	var s workerStats
	if src, ok := rt.(statsSource); ok {
		ctx, cancel := context.WithTimeout(context.Background(), statsLoopWait)
		s = src.stats(ctx)
		cancel()
	}
	s.Shard, s.Pid = shard, os.Getpid()
	s.Goroutines = runtime.NumGoroutine()
	s.HeapBytes = heapBytes()
	b, err := json.Marshal(s)
	if err != nil {
		return // cannot happen: plain fields
	}
	_ = cc.Send(&ctl.Message{Type: ctl.TypeStats, Stats: &ctl.Stats{ID: req.ID, Snapshot: b}})
}

// heapBytes returns the bytes of live and not yet swept heap objects
// (runtime/metrics, which does not stop the world as ReadMemStats does).
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// countOpen counts a Conn given to the handler, and the bytes it has
// buffered already (read past the preamble), on the loop.
func (r *routed) countOpen(c *Conn) {
	if c.h != nil {
		return // a side of a forwarded TLS connection (splice)
	}
	how := howLocal
	switch {
	case c.relayed:
		how = howRelay
	case c.fwd:
		how = howHandoff
	}
	r.lstats.opened[how]++
	n := len(c.pre)
	switch {
	case c.st != nil:
		n += c.st.buffered()
	case c.tl != nil:
		n += c.tl.buffered()
	case c.gc != nil:
		c.inSeen = c.gc.InboundBuffered()
		n += c.inSeen
	}
	r.lstats.bytesIn += uint64(n)
}

// countIn counts the bytes gnet read for c since it last looked, on the
// loop: what its buffer holds past what was counted (inSeen, which the
// Conn's Next and Discard lower as the handler consumes).
func (r *routed) countIn(c *Conn) {
	n := c.gc.InboundBuffered()
	if n > c.inSeen {
		c.counted(n-c.inSeen, 0)
	}
	c.inSeen = n
}

// counted adds bytes in and out of c to the shard's totals, on the loop:
// the bytes of the handler's Conns, not those of a splice's sides.
func (c *Conn) counted(in, out int) {
	if c.h == nil {
		c.rt.lstats.bytesIn += uint64(in)
		c.rt.lstats.bytesOut += uint64(out)
	}
}

// consumed lowers inSeen by n bytes the handler took from gnet's buffer.
func (c *Conn) consumed(n int) {
	c.inSeen = max(c.inSeen-n, 0)
}

// countHijacked adds the bytes of a hijacked connection that closes to
// the shard's totals, on the loop.
func (r *routed) countHijacked(c *Conn) {
	if c.hj != nil {
		r.lstats.bytesIn += c.hj.in.Load()
		r.lstats.bytesOut += c.hj.out.Load()
	}
}

// tlsResult classifies a failed handshake as handshakeReason names it.
func tlsResult(err error, ctx context.Context) int {
	var rh tls.RecordHeaderError
	switch {
	case ctx.Err() != nil:
		return tlsTimeout
	case errors.As(err, &rh):
		return tlsNotTLS
	}
	return tlsFailed
}
