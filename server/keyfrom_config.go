package server

import (
	"fmt"

	"github.com/subordinate/subordinate/internal/keysrc"
	"github.com/subordinate/subordinate/internal/proxyproto"
)

// validateKeyFrom checks KeyFrom and what goes with it: DefaultKey,
// MaxHTTPHead and the PROXY protocol settings. anyTLS says whether a
// listener is tls://.
func (c *Config) validateKeyFrom(anyTLS bool) error {
	src, err := keysrc.Parse(c.KeyFrom)
	if err != nil {
		return err
	}
	switch {
	case c.DefaultKey != "" && src.Kind == keysrc.Frame:
		return fmt.Errorf("a default key needs a --key-from other than frame")
	case len(c.DefaultKey) > c.MaxKey:
		return fmt.Errorf("default key of %d bytes: longer than max key %d", len(c.DefaultKey), c.MaxKey)
	case src.HTTP() && (c.MaxHTTPHead < 64 || c.MaxHTTPHead > 1<<20):
		return fmt.Errorf("max HTTP head %d: want 64 bytes to 1 MiB", c.MaxHTTPHead)
	case src.BeforeTLS() && anyTLS && c.Forward != ForwardHandoff:
		// The owner terminates TLS on the client's own socket: only a
		// hand-off brings it there.
		return fmt.Errorf("--key-from %s with a tls:// listener needs --forward %s: the owner terminates TLS on the client's socket", src, ForwardHandoff)
	case c.AcceptProxyProtocol && len(c.TrustedProxies) == 0:
		return fmt.Errorf("--accept-proxy-protocol needs --trusted-proxy: the networks allowed to send PROXY headers")
	case !c.AcceptProxyProtocol && len(c.TrustedProxies) > 0:
		return fmt.Errorf("--trusted-proxy without --accept-proxy-protocol")
	}
	if c.AcceptProxyProtocol {
		if _, err := proxyproto.ParseTrusted(c.TrustedProxies); err != nil {
			return err
		}
	}
	return nil
}
