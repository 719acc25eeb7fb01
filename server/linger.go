package server

import "time"

// lingerer is implemented by a shard runtime that can stay up, drained,
// until a given time (the routed runtime).
type lingerer interface {
	// LingerUntil, called before Drain, keeps the shard up until t even
	// once nothing is left to wait for; the drain's deadline still
	// closes everything.
	LingerUntil(t time.Time)
}

// certReloader is implemented by a shard runtime that serves TLS and can
// re-read its certificate files (the routed runtime, tls_reload.go).
type certReloader interface {
	ReloadCerts()
}

// LingerUntil implements lingerer. A binary upgrade drains the old
// workers all at once while the new ones accept: a connection an old
// worker accepted just before it stopped accepting may still be reading
// its key, and its owner, another old worker with nothing left to do,
// would be gone when it is handed over, and the connection refused. The
// old workers therefore stay up, not accepting, for as long as a key may
// take to come (Config.PreambleTimeout) before they exit.
func (r *routed) LingerUntil(t time.Time) {
	r.lingerUntil.Store(t.UnixNano())
	time.AfterFunc(time.Until(t), func() { _ = r.shard.run(r.maybeDrained) })
}

// lingering reports whether a drained shard must stay up yet.
func (r *routed) lingering() bool {
	until := r.lingerUntil.Load()
	return until != 0 && time.Now().UnixNano() < until
}
