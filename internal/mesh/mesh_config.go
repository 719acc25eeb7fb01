package mesh

import (
	"errors"
	"fmt"
	"time"

	"github.com/xtaci/smux"
)

// smuxInitialWindow is the window a smux v2 writer assumes before the
// reader's first window update (smux's initialPeerWindow, fixed by the
// library). A stream can therefore hold this much unread data even when
// MaxStreamBuffer is smaller.
const smuxInitialWindow = 256 << 10

// MeshConfig tunes the sessions of a Mesh. Both ends of a link must use the
// same MaxFrameSize limits and the same smux protocol version (always 2);
// the window sizes may differ. Start from DefaultMeshConfig.
type MeshConfig struct {
	// MaxStreamBuffer is the per-stream window (smux protocol version 2):
	// the most unread bytes one stream can hold on its receiving side
	// before its writer blocks. A slow stream stalls only itself until the
	// session's MaxReceiveBuffer runs out. Default 256 KiB (the window smux
	// assumes before the first window update, so smaller values only take
	// effect after a stream's first read).
	MaxStreamBuffer int

	// MaxReceiveBuffer is the receive budget of a whole session: the sum
	// of unread bytes over all its streams. When it is used up the session
	// stops reading its link and every stream on it waits (no memory
	// grows). It bounds the memory a peer can make this process hold:
	// at most MaxReceiveBuffer + MaxFrameSize per session, (N-1) sessions
	// per worker. With the defaults, 128 streams with a full window fit
	// before the session stalls. Default 32 MiB.
	MaxReceiveBuffer int

	// MaxFrameSize is the largest data frame sent on a link. Default
	// 32 KiB; at most 65535.
	MaxFrameSize int

	// KeepAliveInterval is how often a session sends a keepalive frame;
	// KeepAliveTimeout is how long a session waits for any frame before it
	// closes itself (the peer is then down). A dead process is noticed at
	// once by EOF on the socketpair; keepalive catches a peer that is
	// stopped or wedged. Defaults 10s and 30s. KeepAliveDisabled turns
	// both off.
	KeepAliveInterval time.Duration
	KeepAliveTimeout  time.Duration
	KeepAliveDisabled bool

	// WriteTimeout bounds how long one write on a Stream may wait for the
	// peer's window without any progress. It is the cure for a smux v2
	// writer whose peer has closed the stream: no window update will ever
	// come, and without a deadline the writer would wait forever. A Stream
	// write that times out returns an error satisfying os.IsTimeout; the
	// caller closes the stream. Zero disables it. Default 30s.
	WriteTimeout time.Duration

	// HeaderTimeout is the read deadline an accepted stream carries when it
	// is handed to the StreamHandler: the handler must read the stream
	// header within it, then clear it with SetReadDeadline(time.Time{}).
	// Zero means no deadline. Default 5s.
	HeaderTimeout time.Duration

	// ReadBufferSize is the size of the buffered reader between a link and
	// its session (smux reads each 8-byte frame header separately; the
	// buffer turns two read syscalls per frame into about one per
	// ReadBufferSize bytes). Zero reads the link directly. Default 64 KiB.
	ReadBufferSize int
}

// DefaultMeshConfig returns the configuration documented on MeshConfig.
func DefaultMeshConfig() MeshConfig {
	return MeshConfig{
		MaxStreamBuffer:   256 << 10,
		MaxReceiveBuffer:  32 << 20,
		MaxFrameSize:      32 << 10,
		KeepAliveInterval: 10 * time.Second,
		KeepAliveTimeout:  30 * time.Second,
		WriteTimeout:      30 * time.Second,
		HeaderTimeout:     5 * time.Second,
		ReadBufferSize:    64 << 10,
	}
}

// ErrBadMeshConfig is wrapped by the errors of MeshConfig.Validate.
var ErrBadMeshConfig = errors.New("mesh: bad mesh config")

// Validate reports the first setting that is out of range.
func (c MeshConfig) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadMeshConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.MaxFrameSize <= 0 || c.MaxFrameSize > 65535:
		return bad("MaxFrameSize %d not in [1, 65535]", c.MaxFrameSize)
	case c.MaxStreamBuffer < c.MaxFrameSize:
		return bad("MaxStreamBuffer %d smaller than MaxFrameSize %d", c.MaxStreamBuffer, c.MaxFrameSize)
	case c.MaxReceiveBuffer < c.MaxStreamBuffer || c.MaxReceiveBuffer < smuxInitialWindow:
		return bad("MaxReceiveBuffer %d smaller than MaxStreamBuffer %d or 256 KiB", c.MaxReceiveBuffer, c.MaxStreamBuffer)
	case c.MaxReceiveBuffer > 1<<30:
		return bad("MaxReceiveBuffer %d larger than 1 GiB", c.MaxReceiveBuffer)
	case !c.KeepAliveDisabled && c.KeepAliveInterval <= 0:
		return bad("KeepAliveInterval %v not positive", c.KeepAliveInterval)
	case !c.KeepAliveDisabled && c.KeepAliveTimeout < c.KeepAliveInterval:
		return bad("KeepAliveTimeout %v shorter than KeepAliveInterval %v", c.KeepAliveTimeout, c.KeepAliveInterval)
	case c.WriteTimeout < 0:
		return bad("WriteTimeout %v negative", c.WriteTimeout)
	case c.HeaderTimeout < 0:
		return bad("HeaderTimeout %v negative", c.HeaderTimeout)
	case c.ReadBufferSize < 0 || c.ReadBufferSize > 16<<20:
		return bad("ReadBufferSize %d not in [0, 16 MiB]", c.ReadBufferSize)
	}
	return nil
}

// smuxConfig is the smux configuration of c, protocol version 2.
func (c MeshConfig) smuxConfig() *smux.Config {
	return &smux.Config{
		Version:           2,
		KeepAliveDisabled: c.KeepAliveDisabled,
		KeepAliveInterval: c.KeepAliveInterval,
		KeepAliveTimeout:  c.KeepAliveTimeout,
		MaxFrameSize:      c.MaxFrameSize,
		MaxReceiveBuffer:  c.MaxReceiveBuffer,
		MaxStreamBuffer:   c.MaxStreamBuffer,
	}
}
