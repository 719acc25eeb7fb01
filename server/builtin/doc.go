// Package builtin holds the handlers the subordinate command serves with
// --handler: echo and chat. Each is an ordinary server.HandlerFactory, and
// a program that embeds Subordinate can serve them too.
package builtin
