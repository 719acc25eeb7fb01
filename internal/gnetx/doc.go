// Package gnetx runs a gnet v2 engine the way a Subordinate shard needs it:
// exactly one event loop that both accepts and serves, accepting on
// listening sockets that another process bound (the master), with a handle
// to run functions on the loop from any goroutine, a way to stop accepting
// while the connections in flight go on, and gnet's logs sent to slog.
//
// # Adopting a listening socket
//
// gnet v2.9 builds its listeners only from "proto://addr" strings. It
// creates and binds them (createListeners), then calls
// EventHandler.OnBoot, and only after OnBoot returns does the event loop
// register the listener descriptors with epoll or kqueue (engine.start).
// Start uses that window. For each socket to adopt it first reserves a
// loopback port (a bound, not listening, SO_REUSEPORT socket), lets gnet
// bind its listener to that port as a placeholder, finds in OnBoot the one
// listening descriptor of the process bound to it, and duplicates the
// adopted socket onto that descriptor number (dup2). The loop then polls
// and accepts on the adopted socket, with gnet's own accept path: no
// syscall more per connection than gnet binding its own socket.
//
// With SO_REUSEPORT on and one event loop gnet takes its simplest path
// (runEventLoops): the loop goroutine accepts and serves, there is no
// separate acceptor. gnet disables SO_REUSEPORT when any listener is a
// Unix socket, which would bring the acceptor back: that is why every
// placeholder is a TCP socket, even for an adopted Unix listener. gnet
// only uses the network of a listener to label its connections; Conn's
// keep-alive setters fail on those, nothing else differs.
//
// gnet's Conn.LocalAddr reports the placeholder address for connections of
// an adopted listener: use Engine.Listener and Engine.Addr, or
// Engine.LocalAddr, for the real one.
//
// # Invariant
//
// The descriptor of an adopted socket must never be registered with the Go
// runtime's poller in this process (no os.NewFile of a non-blocking
// listener, no net.FileListener): StopAccepting finds the gnet epoll
// instance by the descriptor it watches.
package gnetx
