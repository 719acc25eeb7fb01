package mesh

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// RelayBufferSize is the size of each of the two pooled buffers a Relay
// uses: the most bytes a relay holds in memory per direction.
const RelayBufferSize = 32 << 10

var relayBufs = sync.Pool{New: func() any { b := make([]byte, RelayBufferSize); return &b }}

// RelayResult is what a Relay moved and why it ended.
type RelayResult struct {
	// ClientToStream and StreamToClient count the bytes written to each
	// side.
	ClientToStream, StreamToClient int64
	// Err is the first error other than a clean EOF, or nil when both
	// directions ended with EOF.
	Err error
}

// closeWriter is a conn that can half-close: *net.TCPConn, *net.UnixConn,
// *tls.Conn, *Stream.
type closeWriter interface{ CloseWrite() error }

// Relay copies bytes both ways between client and stream until both
// directions are done, then closes both and returns. An EOF from one side
// is passed on as a half-close of the other (CloseWrite; a conn without
// CloseWrite is left open until the other direction ends too). Any error
// closes both sides at once, which ends the other direction. Each write
// must make progress within writeTimeout (zero: no limit), so that a peer
// that stopped reading for good cannot hold the relay forever. A relay
// holds at most two RelayBufferSize buffers, taken from a pool only while
// bytes stream (2 KiB buffers otherwise); its two
// goroutines (the caller's and one more) have exited when it returns.
func Relay(client, stream net.Conn, writeTimeout time.Duration) RelayResult {
	var (
		res     RelayResult
		errOnce sync.Once
		closeMu sync.Once
	)
	closeBoth := func() {
		closeMu.Do(func() {
			_ = client.Close()
			_ = stream.Close()
		})
	}
	fail := func(err error) {
		errOnce.Do(func() { res.Err = err })
		closeBoth()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, err := copyHalf(stream, client, writeTimeout)
		res.ClientToStream = n
		if err != nil {
			fail(err)
		}
	}()
	n, err := copyHalf(client, stream, writeTimeout)
	res.StreamToClient = n
	if err != nil {
		fail(err)
	}
	<-done
	closeBoth()
	return res
}

// relaySmall is the buffer a relay direction reads into while its reads
// are small.
const relaySmall = 2 << 10

// copyHalf copies src to dst until src's EOF, then half-closes dst. It
// returns the bytes written and the first error (nil after a clean EOF).
//
// It reads into a small buffer of its own while reads are small, and holds
// a pooled RelayBufferSize buffer only while reads fill the small one: an
// idle or chatty connection, blocked in Read most of its life, holds 2 KiB
// per direction instead of 32 KiB, and a bulk transfer still moves 32 KiB
// per read.
func copyHalf(dst, src net.Conn, writeTimeout time.Duration) (int64, error) {
	small := make([]byte, relaySmall)
	buf := small
	var big *[]byte
	defer func() {
		if big != nil {
			relayBufs.Put(big)
		}
	}()
	var written int64
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			if writeTimeout > 0 {
				_ = dst.SetWriteDeadline(time.Now().Add(writeTimeout))
			}
			nw, werr := dst.Write(buf[:nr])
			written += int64(nw)
			if werr != nil {
				return written, werr
			}
			if nw != nr {
				return written, io.ErrShortWrite
			}
		}
		switch {
		case big == nil && nr == len(small):
			big = relayBufs.Get().(*[]byte)
			buf = *big
		case big != nil && nr < relaySmall:
			relayBufs.Put(big)
			big, buf = nil, small
		}
		if rerr == io.EOF {
			if cw, ok := dst.(closeWriter); ok {
				if err := cw.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
					return written, err
				}
			}
			return written, nil
		}
		if rerr != nil {
			return written, rerr
		}
	}
}
